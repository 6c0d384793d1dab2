"""From detected alerts to persisted notifications: state by fingerprint (firing, resolved),
silences, inhibition, routing, grouping and deduplication.

A notification goes to a receiver for a group (the route's `group_by` labels) when an alert in
it resolved, when a new alert fires in it and its `group_interval` has passed since the group's
last notification, or when it is unchanged and still firing after `repeat_interval`. A new
group's first notification waits `group_wait` from its first alert. Its dedup key is derived
from the group's content and the notification it follows, so evaluators racing on one database
write it once, and an alert storm that repeats the same content writes nothing new.
Notifications are stored before any delivery."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from alerts.model import Alert
from alerts.routing import Route, RoutingConfig, parse_matcher
from engine.domain.ids import new_random_id
from engine.domain.text import validate_text
from engine.exceptions import PaysignalError, ValidationError
from engine.storage.repository import utc
from engine.storage.sql import insert_ignoring_conflicts
from engine.storage.tables import (
    alert_firings,
    alert_notifications,
    alert_silences,
    alert_states,
)
from slo.spec import Matcher


class SilenceNotFoundError(PaysignalError):
    def __init__(self, silence_id: str) -> None:
        super().__init__(f"no silence {silence_id!r}")


@dataclass
class EvaluationResult:
    firing: list[Alert] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)  # fingerprints
    silenced: list[str] = field(default_factory=list)
    inhibited: list[str] = field(default_factory=list)
    notifications: int = 0

    def as_json(self) -> dict[str, object]:
        return {"firing": [{"name": a.name, "labels": a.labels, "summary": a.summary,
                            "fingerprint": a.fingerprint, "runbook_url": a.runbook_url,
                            "dashboard_url": a.dashboard_url} for a in self.firing],
                "resolved": self.resolved, "silenced": self.silenced,
                "inhibited": self.inhibited, "notifications": self.notifications}


# --- silences --------------------------------------------------------------------------

MAX_SILENCE = timedelta(days=14)


def create_silence(engine: Engine, matchers: list[str], *, author: str, comment: str,
                   duration: timedelta, now: datetime | None = None,
                   match_everything: bool = False) -> dict[str, object]:
    """A silence of at most 14 days. One that would mute every alert is refused unless
    `match_everything` says it is meant."""
    if not matchers:
        raise ValidationError("matchers", "a silence needs at least one matcher")
    try:
        parsed = [parse_matcher(m) for m in matchers]
    except ValueError as exc:
        raise ValidationError("matchers", str(exc)) from None
    validate_text(author, "author", 128)
    validate_text(comment, "comment", 1000)
    if duration <= timedelta(0) or duration > MAX_SILENCE:
        raise ValidationError("duration", "must be more than 0 and at most 14 days")
    if not match_everything and all(_matches_anything(m) for m in parsed):
        raise ValidationError("matchers", "these matchers silence every alert; narrow them, or "
                                          "confirm with match_everything (--match-everything)")
    now = now or datetime.now(UTC)
    row = {"id": new_random_id("sil"), "matchers": json.dumps([m.promql() for m in parsed]),
           "author": author, "comment": comment, "starts_at": now, "ends_at": now + duration}
    with engine.begin() as conn:
        conn.execute(insert(alert_silences).values(**row))
    return {**row, "matchers": [m.promql() for m in parsed]}


def _matches_anything(matcher: Matcher) -> bool:
    """Whether the matcher holds for a missing label and for values no alert would use."""
    return all(matcher.matches({matcher.label: value} if value else {})
               for value in ("", "x", "zz-9 unusual value", "adyen", "page"))


def expire_silence(engine: Engine, silence_id: str, *, by: str,
                   now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        done = conn.execute(update(alert_silences).where(alert_silences.c.id == silence_id)
                            .values(ends_at=now, expired_by=by)).rowcount
    if not done:
        raise SilenceNotFoundError(silence_id)


def active_silences(engine: Engine, at: datetime) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(alert_silences).where(alert_silences.c.starts_at <= at,
                                                         alert_silences.c.ends_at > at)).all()
    return [{**dict(r._mapping), "matchers": json.loads(r.matchers)} for r in rows]


def _silenced(labels: dict[str, str], silences: list[dict[str, Any]]) -> bool:
    return any(all(parse_matcher(m).matches(labels) for m in s["matchers"]) for s in silences)


# --- evaluation ------------------------------------------------------------------------

@dataclass(slots=True)
class _Group:
    """The alerts one notification to one receiver will carry."""

    route: Route
    alerts: list[dict[str, object]] = field(default_factory=list)


def _update_states(engine: Engine, alerts: list[Alert],
                   at: datetime) -> tuple[dict[str, Alert], list[dict[str, Any]]]:
    """Record firing alerts; resolve those no longer detected. Returns the firing alerts with
    their start times, and the rows resolved now."""
    current = {a.fingerprint: a for a in alerts}
    with engine.begin() as conn:
        known = {r.fingerprint: r for r in conn.execute(
            select(alert_states).where(alert_states.c.status == "firing"))}
        firing: dict[str, Alert] = {}
        for fp, a in current.items():
            if fp in known:
                conn.execute(update(alert_states).where(alert_states.c.fingerprint == fp).values(
                    summary=a.summary[:1000], details=json.dumps(a.details, default=str),
                    last_seen_at=at))
                if known[fp].summary != a.summary[:1000]:  # the period keeps the latest numbers
                    conn.execute(update(alert_firings).where(
                        alert_firings.c.fingerprint == fp, alert_firings.c.ends_at.is_(None))
                        .values(summary=a.summary[:1000]))
                starts = utc(known[fp].starts_at)
            else:
                starts = at
                values = {"name": a.name, "labels": json.dumps(a.labels), "status": "firing",
                          "summary": a.summary[:1000],
                          "details": json.dumps(a.details, default=str), "starts_at": at,
                          "ends_at": None, "last_seen_at": at}
                if conn.execute(update(alert_states).where(alert_states.c.fingerprint == fp)
                                .values(**values)).rowcount == 0:
                    conn.execute(insert(alert_states).values(fingerprint=fp, **values))
                conn.execute(insert(alert_firings).values(
                    fingerprint=fp, name=a.name, labels=values["labels"],
                    summary=values["summary"], starts_at=at, ends_at=None))
            firing[fp] = Alert(a.name, a.labels, a.summary, a.details, starts)
        resolved = [dict(r._mapping) for fp, r in known.items() if fp not in current]
        for r in resolved:
            conn.execute(update(alert_states).where(alert_states.c.fingerprint == r["fingerprint"])
                         .values(status="resolved", ends_at=at))
            conn.execute(update(alert_firings).where(
                alert_firings.c.fingerprint == r["fingerprint"], alert_firings.c.ends_at.is_(None))
                .values(ends_at=at))
    return firing, resolved


def _group_key(receiver: str, route: Route, labels: dict[str, str]) -> str:
    return receiver + "|" + ",".join(f"{k}={labels.get(k, '')}" for k in route.group_by)


def evaluate_alerts(engine: Engine, config: RoutingConfig, alerts: list[Alert],
                    at: datetime | None = None) -> EvaluationResult:
    at = (at or datetime.now(UTC)).astimezone(UTC)
    firing, resolved_rows = _update_states(engine, alerts, at)
    silences = active_silences(engine, at)
    result = EvaluationResult(resolved=[r["fingerprint"] for r in resolved_rows])
    labels_firing = [a.labels for a in firing.values()]
    groups: dict[tuple[str, str], _Group] = {}

    def add(labels: dict[str, str], entry: dict[str, object]) -> None:
        for route in config.route.match(labels):
            key = (route.receiver, _group_key(route.receiver, route, labels))
            groups.setdefault(key, _Group(route)).alerts.append(entry)

    for fp, a in sorted(firing.items()):
        if _silenced(a.labels, silences):
            result.silenced.append(fp)
            continue
        if config.inhibited(a.labels, labels_firing):
            result.inhibited.append(fp)
            continue
        result.firing.append(a)
        add(a.labels, {"fingerprint": fp, "status": "firing", "name": a.name, "labels": a.labels,
                       "summary": a.summary, "impact": a.impact, "runbook_url": a.runbook_url,
                       "dashboard_url": a.dashboard_url,
                       "starts_at": (a.starts_at or at).isoformat(), "ends_at": None})
    for r in resolved_rows:
        labels = json.loads(r["labels"])
        if _silenced(labels, silences):
            continue
        gone = Alert(r["name"], labels, r["summary"], starts_at=utc(r["starts_at"]))
        add(labels, {"fingerprint": r["fingerprint"], "status": "resolved", "name": r["name"],
                     "labels": labels, "summary": r["summary"], "runbook_url": gone.runbook_url,
                     "dashboard_url": gone.dashboard_url,
                     "starts_at": utc(r["starts_at"]).isoformat(),
                     "ends_at": at.isoformat()})
    for (receiver, group_key), group in sorted(groups.items(), key=lambda kv: kv[0]):
        if _notify(engine, receiver, group_key, group.route, group.alerts, at):
            result.notifications += 1
    return result


def _notify(engine: Engine, receiver: str, group_key: str, route: Route,
            entries: list[dict[str, object]], at: datetime) -> bool:
    content = sorted(f"{e['fingerprint']}:{e['status']}" for e in entries)
    content_hash = hashlib.sha256("\n".join(content).encode()).hexdigest()
    with engine.connect() as conn:
        last = conn.execute(select(alert_notifications.c.id, alert_notifications.c.payload,
                                   alert_notifications.c.created_at)
                            .where(alert_notifications.c.group_key == group_key)
                            .order_by(alert_notifications.c.id.desc()).limit(1)).first()
    if last is not None:
        previous = json.loads(last.payload)
        since = at - utc(last.created_at)
        changed = previous["content_hash"] != content_hash
        still_firing = any(e["status"] == "firing" for e in entries)
        resolving = any(e["status"] == "resolved" for e in entries)
        # a resolution is seen once, so it is never held back; new firing alerts keep firing
        # and wait for the group interval
        if changed and not resolving and since < route.group_interval:
            return False
        if not changed and not (still_firing and since >= route.repeat_interval):
            return False
        if not changed and not still_firing:
            return False
    elif not any(e["status"] == "firing" for e in entries):
        return False  # a group's first word is never "resolved"
    else:  # a new group waits `group_wait` from its first alert, to gather its siblings
        first = min(datetime.fromisoformat(str(e["starts_at"])) for e in entries)
        if at - first < route.group_wait:
            return False
    follows = last.id if last is not None else 0
    dedup = hashlib.sha256(f"{group_key}|{content_hash}|{follows}".encode()).hexdigest()
    payload = {"receiver": receiver, "group_key": group_key, "content_hash": content_hash,
               "status": "firing" if any(e["status"] == "firing" for e in entries)
               else "resolved", "alerts": entries, "at": at.isoformat()}
    with engine.begin() as conn:
        row = conn.execute(insert_ignoring_conflicts(conn, alert_notifications, "dedup_key")
                           .values(receiver=receiver, group_key=group_key, dedup_key=dedup,
                                   payload=json.dumps(payload, default=str), created_at=at,
                                   attempts=0, next_attempt_at=at)
                           .returning(alert_notifications.c.id)).first()
    return row is not None
