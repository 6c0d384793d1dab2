"""Where people follow links from alerts: the dashboard, and the runbook of each alert. One
place, because the Prometheus rules (slo), the alert pipeline (alerts) and the dashboard all
write these links, and a link must open where it is served."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote, urlencode


def dashboard_base() -> str:
    """PAYSIGNAL_DASHBOARD_URL: where people open the dashboard."""
    return os.environ.get("PAYSIGNAL_DASHBOARD_URL", "http://127.0.0.1:8501").rstrip("/")


RUNBOOKS_PAGE = "runbooks"  # the dashboard page that serves alerts/runbooks/<alert>.md
INCIDENT_PAGE = "incident"  # the dashboard page an alert's link opens
INCIDENT_LABELS = ("provider", "slo")  # the labels that say where to look
STARTS_FORMAT = "%Y-%m-%dT%H:%MZ"


def incident_url(labels: Mapping[str, str], starts_at: datetime | None = None) -> str:
    """The dashboard's incident view of this alert: its name, the labels that say where to
    look, and when it started (to the minute, UTC)."""
    params = {"alert": labels.get("alertname", "")}
    params.update({k: labels[k] for k in INCIDENT_LABELS if labels.get(k)})
    if starts_at is not None:
        params["starts"] = starts_at.astimezone(UTC).strftime(STARTS_FORMAT)
    return f"{dashboard_base()}/{INCIDENT_PAGE}?{urlencode(params)}"


def runbook_url(alert_name: str) -> str:
    """The dashboard's Runbooks page for this alert; or, with PAYSIGNAL_RUNBOOK_BASE set (a
    wiki or a repository that publishes alerts/runbooks), `<base>/<alert>.md` there."""
    base = os.environ.get("PAYSIGNAL_RUNBOOK_BASE", "").rstrip("/")
    if base:
        return f"{base}/{quote(alert_name)}.md"
    return f"{dashboard_base()}/{RUNBOOKS_PAGE}?alert={quote(alert_name)}"
