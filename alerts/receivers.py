"""Delivery of persisted notifications: file (JSON lines), generic webhook (HMAC-SHA256),
Slack incoming webhook, PagerDuty Events API v2, e-mail over SMTP, and Alertmanager
(POST /api/v2/alerts). A failed delivery is retried with exponential backoff, and every
attempt's outcome is kept on the notification row. Secrets come from the environment or files
named in the receiver's settings (`<key>_env`, `<key>_file`), never from the routing file."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select, update

from alerts.routing import Receiver, RoutingConfig
from engine.exceptions import ConfigurationError, PaysignalError
from engine.storage.tables import alert_notifications

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
MAX_BACKOFF = timedelta(minutes=5)
FIRST_BACKOFF = timedelta(seconds=5)


class DeliveryError(PaysignalError):
    """A receiver refused or could not be reached; the notification will be retried."""


def secret(settings: dict[str, Any], key: str) -> str | None:
    """`key` from `<key>_file` or `<key>_env` (or inline `key`, for non-secrets like URLs)."""
    if settings.get(f"{key}_file"):
        return Path(settings[f"{key}_file"]).read_text().strip()
    if settings.get(f"{key}_env"):
        value = os.environ.get(settings[f"{key}_env"])
        if not value:
            raise ConfigurationError(f"receiver setting {key}: environment variable "
                                     f"{settings[f'{key}_env']} is not set")
        return value
    return settings.get(key)


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    try:
        response = httpx.post(url, content=body, timeout=10,
                              headers={"Content-Type": "application/json", **headers})
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
    if response.status_code >= 300:
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}")


def _text(payload: dict[str, Any]) -> str:
    lines = []
    for a in payload["alerts"]:
        mark = "RESOLVED" if a["status"] == "resolved" else a["labels"].get("severity", "").upper()
        lines.append(f"[{mark}] {a['name']}: {a['summary']}")
        if a["status"] == "firing":
            lines.append(f"  impact: {a.get('impact', '')}")
            lines.append(f"  runbook: {a.get('runbook_url', '')}  dashboard: "
                         f"{a.get('dashboard_url', '')}")
    return "\n".join(lines)


def send_file(r: Receiver, payload: dict[str, Any]) -> None:
    path = Path(r.settings.get("path", "var/alerts.log"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(payload, default=str) + "\n")


def send_webhook(r: Receiver, payload: dict[str, Any]) -> None:
    body = json.dumps(payload, default=str).encode()
    headers = {}
    key = secret(r.settings, "secret")
    if key:
        headers["X-Paysignal-Signature"] = "sha256=" + hmac.new(key.encode(), body,
                                                                hashlib.sha256).hexdigest()
    _post(str(secret(r.settings, "url")), body, headers)


def send_slack(r: Receiver, payload: dict[str, Any]) -> None:
    message: dict[str, Any] = {"text": _text(payload)}
    if r.settings.get("channel"):
        message["channel"] = r.settings["channel"]
    _post(str(secret(r.settings, "url")), json.dumps(message).encode(), {})


_PD_SEVERITY = {"page": "critical", "ticket": "warning", "info": "info"}


def send_pagerduty(r: Receiver, payload: dict[str, Any]) -> None:
    """One Events API v2 event per alert, deduplicated by the alert's fingerprint."""
    key = secret(r.settings, "routing_key")
    url = r.settings.get("url", PAGERDUTY_EVENTS_URL)
    for a in payload["alerts"]:
        event: dict[str, Any] = {"routing_key": key, "dedup_key": a["fingerprint"],
                                 "event_action": "resolve" if a["status"] == "resolved"
                                 else "trigger"}
        if a["status"] == "firing":
            event["payload"] = {"summary": a["summary"][:1024], "source": "paysignal",
                                "severity": _PD_SEVERITY.get(a["labels"].get("severity"), "error"),
                                "component": a["labels"].get("provider", "paysignal"),
                                "group": a["labels"].get("slo", a["name"]),
                                "class": a["name"], "custom_details": {
                                    "impact": a.get("impact"), "labels": a["labels"]}}
            event["links"] = [{"href": a["runbook_url"], "text": "runbook"},
                              {"href": a["dashboard_url"], "text": "dashboard"}]
        _post(url, json.dumps(event).encode(), {})


def send_email(r: Receiver, payload: dict[str, Any]) -> None:
    host, _, port = str(secret(r.settings, "smarthost") or "localhost:25").partition(":")
    message = EmailMessage()
    names = sorted({a["name"] for a in payload["alerts"]})
    message["Subject"] = f"[paysignal {payload['status'].upper()}] {', '.join(names)}"
    message["From"] = r.settings.get("from", "paysignal@localhost")
    message["To"] = r.settings["to"]
    message.set_content(_text(payload))
    password = secret(r.settings, "password")
    implicit_tls = r.settings.get("tls") == "smtps" or port == "465"
    try:
        smtp_class = smtplib.SMTP_SSL if implicit_tls else smtplib.SMTP
        with smtp_class(host, int(port or 25), timeout=10) as smtp:
            if not implicit_tls:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                elif password:
                    raise DeliveryError(f"SMTP {host}:{port}: the server offers no STARTTLS; "
                                        "refusing to send credentials in clear (use STARTTLS "
                                        "or tls: smtps)")
            if password:
                smtp.login(r.settings.get("username", ""), password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"SMTP {host}:{port}: {exc}") from None


def send_alertmanager(r: Receiver, payload: dict[str, Any]) -> None:
    alerts = [{"labels": a["labels"],
               "annotations": {"summary": a["summary"], "runbook_url": a.get("runbook_url", ""),
                               "dashboard_url": a.get("dashboard_url", "")},
               "startsAt": a["starts_at"], **({"endsAt": a["ends_at"]} if a["ends_at"] else {}),
               "generatorURL": a.get("dashboard_url", "")} for a in payload["alerts"]]
    _post(f"{str(secret(r.settings, 'url')).rstrip('/')}/api/v2/alerts",
          json.dumps(alerts).encode(), {})


SENDERS: dict[str, Callable[[Receiver, dict[str, Any]], None]] = {
    "file": send_file, "webhook": send_webhook, "slack": send_slack,
    "pagerduty": send_pagerduty, "email": send_email, "alertmanager": send_alertmanager,
}


def backoff(attempts: int) -> timedelta:
    return min(MAX_BACKOFF, FIRST_BACKOFF * float(2 ** max(0, attempts - 1)))


def deliver_pending(engine: Engine, config: RoutingConfig, now: datetime | None = None,
                    limit: int = 500) -> dict[str, int]:
    """Send every notification that is due; a failure is kept and retried later."""
    now = now or datetime.now(UTC)
    sent = failed = 0
    with engine.connect() as conn:
        due = conn.execute(select(alert_notifications).where(
            alert_notifications.c.delivered_at.is_(None),
            alert_notifications.c.next_attempt_at <= now)
            .order_by(alert_notifications.c.id).limit(limit)).all()
    for row in due:
        receiver = config.receivers.get(row.receiver)
        try:
            if receiver is None:
                raise DeliveryError(f"receiver {row.receiver!r} is no longer configured")
            SENDERS[receiver.kind](receiver, json.loads(row.payload))
        except (DeliveryError, ConfigurationError, OSError) as exc:
            failed += 1
            with engine.begin() as conn:
                conn.execute(update(alert_notifications).where(alert_notifications.c.id == row.id)
                             .values(attempts=row.attempts + 1, last_error=str(exc)[:1000],
                                     next_attempt_at=now + backoff(row.attempts + 1)))
            continue
        sent += 1
        with engine.begin() as conn:
            conn.execute(update(alert_notifications).where(alert_notifications.c.id == row.id)
                         .values(attempts=row.attempts + 1, delivered_at=now, last_error=None))
    return {"sent": sent, "failed": failed}
