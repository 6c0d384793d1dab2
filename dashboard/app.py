"""The paysignal dashboard: `paysignal serve dashboard` (or `streamlit run dashboard/app.py`)."""

import streamlit as st
from sqlalchemy.exc import DBAPIError, OperationalError

from dashboard import ui
from dashboard.pages import PAGES

st.set_page_config(page_title="paysignal", page_icon="💳", layout="wide")
page = st.navigation([st.Page(p.file, title=p.title, icon=p.icon, default=not p.url_path,
                              url_path=p.url_path or None)
                      for p in PAGES])
ui.build_context()
try:
    page.run()
except (OperationalError, DBAPIError) as exc:
    ui.dead_database(exc)
