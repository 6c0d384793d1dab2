"""Where people follow links from alerts: the dashboard, and the runbook of each alert. One
place, because the Prometheus rules (slo), the alert pipeline (alerts) and the dashboard all
write these links, and a link must open where it is served."""

from __future__ import annotations

import os
from urllib.parse import quote


def dashboard_base() -> str:
    """PAYSIGNAL_DASHBOARD_URL: where people open the dashboard."""
    return os.environ.get("PAYSIGNAL_DASHBOARD_URL", "http://127.0.0.1:8501").rstrip("/")


RUNBOOKS_PAGE = "runbooks"  # the dashboard page that serves alerts/runbooks/<alert>.md


def runbook_url(alert_name: str) -> str:
    """The dashboard's Runbooks page for this alert; or, with PAYSIGNAL_RUNBOOK_BASE set (a
    wiki or a repository that publishes alerts/runbooks), `<base>/<alert>.md` there."""
    base = os.environ.get("PAYSIGNAL_RUNBOOK_BASE", "").rstrip("/")
    if base:
        return f"{base}/{quote(alert_name)}.md"
    return f"{dashboard_base()}/{RUNBOOKS_PAGE}?alert={quote(alert_name)}"
