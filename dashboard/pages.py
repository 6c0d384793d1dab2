"""The dashboard's pages: one list for the navigation and for the links alerts carry."""

from pathlib import Path
from typing import NamedTuple

from slo.links import INCIDENT_PAGE, RUNBOOKS_PAGE

VIEWS = Path(__file__).parent / "views"


class PageSpec(NamedTuple):
    file: Path
    title: str
    url_path: str  # "" for the root
    icon: str


PAGES = [
    PageSpec(VIEWS / "overview.py", "Overview", "", ":material/dashboard:"),
    PageSpec(VIEWS / "payments.py", "Payments", "payments", ":material/receipt_long:"),
    PageSpec(VIEWS / "reconciliation.py", "Reconciliation", "reconciliation",
             ":material/account_balance:"),
    PageSpec(VIEWS / "money.py", "Money", "money", ":material/payments:"),
    PageSpec(VIEWS / "slos.py", "SLOs", "slos", ":material/speed:"),
    PageSpec(VIEWS / "alerts.py", "Alerts", "alerts", ":material/notifications:"),
    PageSpec(VIEWS / "incident.py", "Incidents", INCIDENT_PAGE, ":material/emergency:"),
    PageSpec(VIEWS / "runbooks.py", "Runbooks", RUNBOOKS_PAGE, ":material/menu_book:"),
]
