"""The paysignal dashboard: `paysignal serve dashboard` (or `streamlit run dashboard/app.py`)."""

from pathlib import Path

import streamlit as st
from sqlalchemy.exc import DBAPIError, OperationalError

from dashboard import ui

VIEWS = Path(__file__).parent / "views"
PAGES = [
    st.Page(VIEWS / "overview.py", title="Overview", url_path="overview", default=True,
            icon=":material/dashboard:"),
    st.Page(VIEWS / "payments.py", title="Payments", url_path="payments",
            icon=":material/receipt_long:"),
    st.Page(VIEWS / "reconciliation.py", title="Reconciliation", url_path="reconciliation",
            icon=":material/account_balance:"),
    st.Page(VIEWS / "slos.py", title="SLOs", url_path="slos", icon=":material/speed:"),
    st.Page(VIEWS / "alerts.py", title="Alerts", url_path="alerts",
            icon=":material/notifications:"),
]

st.set_page_config(page_title="paysignal", page_icon="💳", layout="wide")
page = st.navigation(PAGES)
ui.build_context()
try:
    page.run()
except (OperationalError, DBAPIError) as exc:
    ui.dead_database(exc)
