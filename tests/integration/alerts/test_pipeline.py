"""Alert states, silences, inhibition, grouping and deduplication, persisted notifications,
delivery with retries, and the receivers' payloads (webhook, PagerDuty, e-mail)."""

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from alerts.model import Alert
from alerts.pipeline import create_silence, evaluate_alerts, expire_silence
from alerts.receivers import deliver_pending
from alerts.routing import parse_config
from engine.storage.tables import alert_firings, alert_notifications, alert_states
from tests.support.postgres import free_port

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def config(receivers: list[dict[str, object]] | None = None):
    return parse_config({
        "route": {"receiver": "hook", "group_by": ["alertname", "provider"],
                  "group_wait": "0s", "group_interval": "5m", "repeat_interval": "4h"},
        "inhibit_rules": [{"source_matchers": ['severity="page"'],
                           "target_matchers": ['severity="ticket"'],
                           "equal": ["slo", "provider"]}],
        "receivers": receivers or [{"name": "hook", "file": {"path": "unused"}}]}, "test.yaml")


def unknown(provider: str, n: int = 3) -> Alert:
    return Alert.of("UnknownOutcomesStale", f"{n} {provider} payments unknown", provider=provider)


def notifications(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [json.loads(r.payload) for r in conn.execute(
            select(alert_notifications).order_by(alert_notifications.c.id))]


@pytest.mark.slow
def test_an_alert_storm_is_one_notification_per_group_per_receiver(db_engine: Engine) -> None:
    cfg = config()
    storm = [unknown("adyen"), unknown("stripe")]
    for i in range(10_000 if db_engine.dialect.name == "sqlite" else 2_000):
        evaluate_alerts(db_engine, cfg, storm, T0 + timedelta(milliseconds=5 * i))
    sent = notifications(db_engine)
    assert len(sent) == 2  # one per provider group
    assert {a["labels"]["provider"] for n in sent for a in n["alerts"]} == {"adyen",
                                                                           "stripe"}


def test_states_resolve_and_a_resolve_notification_follows(db_engine: Engine) -> None:
    cfg = config()
    alert = unknown("adyen")
    evaluate_alerts(db_engine, cfg, [alert], T0)
    result = evaluate_alerts(db_engine, cfg, [], T0 + timedelta(minutes=1))
    assert result.resolved == [alert.fingerprint]
    with db_engine.connect() as conn:
        state = conn.execute(select(alert_states)).one()
    assert state.status == "resolved" and state.fingerprint == alert.fingerprint
    sent = notifications(db_engine)
    assert [n["status"] for n in sent] == ["firing", "resolved"]
    assert sent[1]["alerts"][0]["ends_at"] is not None
    # it fires anew: held back within the group interval, then sent
    assert evaluate_alerts(db_engine, cfg, [alert], T0 + timedelta(minutes=2)).notifications == 0
    assert evaluate_alerts(db_engine, cfg, [alert], T0 + timedelta(minutes=7)).notifications == 1
    assert notifications(db_engine)[-1]["status"] == "firing"



def test_every_firing_period_is_kept_with_its_start_end_and_latest_numbers(
        db_engine: Engine) -> None:
    """The dashboard draws these as bands: an alert that fires twice has two periods."""
    cfg = config()
    evaluate_alerts(db_engine, cfg, [unknown("adyen", 3)], T0)
    evaluate_alerts(db_engine, cfg, [unknown("adyen", 5)], T0 + timedelta(minutes=1))
    evaluate_alerts(db_engine, cfg, [], T0 + timedelta(minutes=4))
    evaluate_alerts(db_engine, cfg, [unknown("adyen", 2)], T0 + timedelta(minutes=9))
    with db_engine.connect() as conn:
        periods = conn.execute(select(alert_firings).order_by(alert_firings.c.id)).all()
    assert [(p.starts_at.replace(tzinfo=UTC), p.ends_at and p.ends_at.replace(tzinfo=UTC))
            for p in periods] == [(T0, T0 + timedelta(minutes=4)),
                                  (T0 + timedelta(minutes=9), None)]
    assert [p.summary for p in periods] == ["5 adyen payments unknown",
                                            "2 adyen payments unknown"]
    assert json.loads(periods[0].labels)["provider"] == "adyen"
    # each notification links to the incident view of its alert, where and since when
    link = notifications(db_engine)[0]["alerts"][0]["dashboard_url"]
    assert link.endswith("/incident?alert=UnknownOutcomesStale&provider=adyen"
                         "&starts=2026-11-20T12%3A00Z")
    resolved = [a for n in notifications(db_engine) for a in n["alerts"]
                if a["status"] == "resolved"]
    assert resolved and resolved[0]["dashboard_url"] == link  # the same incident, resolved

def test_a_group_repeats_after_the_repeat_interval_only(db_engine: Engine) -> None:
    cfg = config()
    alert = unknown("paypal")
    for minutes in (0, 30, 239):
        evaluate_alerts(db_engine, cfg, [alert], T0 + timedelta(minutes=minutes))
    assert len(notifications(db_engine)) == 1
    evaluate_alerts(db_engine, cfg, [alert], T0 + timedelta(hours=4, minutes=1))
    assert len(notifications(db_engine)) == 2


def test_silences_mute_matching_alerts_until_they_expire(db_engine: Engine) -> None:
    cfg = config()
    silence = create_silence(db_engine, ['provider="adyen"'], author="ana",
                             comment="provider maintenance", duration=timedelta(hours=1),
                             now=T0)
    result = evaluate_alerts(db_engine, cfg, [unknown("adyen"), unknown("stripe")], T0)
    assert result.silenced == [unknown("adyen").fingerprint]
    assert [n["alerts"][0]["labels"]["provider"] for n in notifications(db_engine)] == \
        ["stripe"]
    later = evaluate_alerts(db_engine, cfg, [unknown("adyen"), unknown("stripe")],
                            T0 + timedelta(minutes=61))  # the silence has run out
    assert later.silenced == [] and later.notifications == 1
    expire_silence(db_engine, str(silence["id"]), by="ana", now=T0 + timedelta(minutes=70))
    with pytest.raises(Exception, match="no silence"):
        expire_silence(db_engine, "sil_nope", by="ana")
    with pytest.raises(Exception, match="matchers"):
        create_silence(db_engine, ["provider=adyen"], author="a", comment="c",
                       duration=timedelta(hours=1))


def test_a_page_inhibits_the_ticket_of_the_same_slo_and_provider(db_engine: Engine) -> None:
    page = Alert.of("SLOBurnRatePage", "fast", slo="s", provider="p", burn_tier="1h")
    ticket = Alert.of("SLOBurnRateTicket", "slow", slo="s", provider="p", burn_tier="1d")
    result = evaluate_alerts(db_engine, config(), [page, ticket], T0)
    assert result.inhibited == [ticket.fingerprint]
    assert [a.name for a in result.firing] == ["SLOBurnRatePage"]


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes] = []
    headers_seen: list[dict[str, str]] = []
    failing = True

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).failing:
            self.send_response(503)
            self.end_headers()
            return
        type(self).bodies.append(body)
        type(self).headers_seen.append(dict(self.headers))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    handler = type("Handler", (_Receiver,), {"bodies": [], "headers_seen": [], "failing": True})
    server = HTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.slow
def test_a_receiver_down_for_ten_minutes_gets_every_notification_exactly_once(
        db_engine: Engine, receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import hmac

    handler, url = receiver
    monkeypatch.setenv("TEST_HOOK_SECRET", "s3cret")
    cfg = config([{"name": "hook", "webhook": {"url": url, "secret_env": "TEST_HOOK_SECRET"}}])
    alerts = [unknown("adyen"), unknown("stripe")]
    evaluate_alerts(db_engine, cfg, alerts, T0)
    now = T0
    while now < T0 + timedelta(minutes=10):  # the receiver answers 503 all this time
        evaluate_alerts(db_engine, cfg, alerts, now)
        assert deliver_pending(db_engine, cfg, now)["sent"] == 0
        now += timedelta(seconds=30)
    with db_engine.connect() as conn:
        attempts = conn.execute(select(func.max(alert_notifications.c.attempts))).scalar_one()
    assert attempts >= 3  # retried with backoff, not given up
    from engine.read_models.health import notification_states

    assert {state for _r, state, _n in notification_states(db_engine, T0)} == {"failing"}
    handler.failing = False
    for _ in range(3):
        now += timedelta(minutes=5)
        deliver_pending(db_engine, cfg, now)
    received = [json.loads(b) for b in handler.bodies]
    assert sorted(a["fingerprint"] for n in received for a in n["alerts"]) == sorted(
        a.fingerprint for a in alerts)  # each exactly once
    for body, headers in zip(handler.bodies, handler.headers_seen, strict=True):
        expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers["X-Paysignal-Signature"] == f"sha256={expected}"
    assert "s3cret" not in json.dumps(notifications(db_engine))
    assert {state for _r, state, _n in notification_states(db_engine, T0)} == {"delivered"}


@pytest.mark.slow
def test_pagerduty_events_trigger_and_resolve_with_the_alert_fingerprint(
        db_engine: Engine, receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    handler, url = receiver
    handler.failing = False
    monkeypatch.setenv("TEST_PD_KEY", "R0UTING")
    cfg = config([{"name": "hook", "pagerduty": {"routing_key_env": "TEST_PD_KEY", "url": url}}])
    alert = unknown("adyen")
    evaluate_alerts(db_engine, cfg, [alert], T0)
    deliver_pending(db_engine, cfg, T0)
    evaluate_alerts(db_engine, cfg, [], T0 + timedelta(minutes=1))
    deliver_pending(db_engine, cfg, T0 + timedelta(minutes=1))
    trigger, resolve = (json.loads(b) for b in handler.bodies)
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] == alert.fingerprint
    assert trigger["routing_key"] == "R0UTING"
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["source"]
    assert {link["text"] for link in trigger["links"]} == {"runbook", "dashboard"}


class _PlainSmtp:
    """A local SMTP server without STARTTLS that records the verbs it hears."""

    def __init__(self) -> None:
        import socketserver

        self.received: list[str] = []
        self.verbs: list[str] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 test ESMTP\r\n")
                data: list[str] = []
                in_data = False
                for raw in self.rfile:
                    line = raw.decode().rstrip("\r\n")
                    if in_data:
                        if line == ".":
                            in_data = False
                            outer.received.append("\n".join(data))
                            self.wfile.write(b"250 queued\r\n")
                        else:
                            data.append(line)
                        continue
                    verb = line.split(" ")[0].upper()
                    outer.verbs.append(verb)
                    if verb == "DATA":
                        in_data = True
                        self.wfile.write(b"354 go on\r\n")
                    elif verb == "QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"250 ok\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def smarthost(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


@pytest.mark.slow
def test_an_email_reaches_a_local_smtp_server(db_engine: Engine) -> None:
    smtp = _PlainSmtp()
    try:
        cfg = config([{"name": "hook", "email": {"to": "finance@localhost",
                                                 "smarthost": smtp.smarthost}}])
        evaluate_alerts(db_engine, cfg, [unknown("paypal", 7)], T0)
        assert deliver_pending(db_engine, cfg, T0) == {"sent": 1, "failed": 0}
    finally:
        smtp.server.shutdown()
    assert len(smtp.received) == 1
    assert "Subject: [paysignal FIRING] UnknownOutcomesStale" in smtp.received[0]
    assert "7 paypal payments unknown" in smtp.received[0] and "runbook" in smtp.received[0]


def test_smtp_credentials_are_never_sent_in_clear(db_engine: Engine) -> None:
    smtp = _PlainSmtp()
    try:
        cfg = config([{"name": "hook", "email": {"to": "finance@localhost",
                                                 "smarthost": smtp.smarthost,
                                                 "username": "alerts", "password": "hunter2"}}])
        evaluate_alerts(db_engine, cfg, [unknown("paypal", 7)], T0)
        assert deliver_pending(db_engine, cfg, T0) == {"sent": 0, "failed": 1}
    finally:
        smtp.server.shutdown()
    assert "AUTH" not in smtp.verbs and smtp.received == []
    with db_engine.connect() as conn:
        error = conn.execute(select(alert_notifications.c.last_error)).scalar_one()
    assert "refusing to send credentials in clear" in error


def test_the_file_receiver_appends_json_lines(db_engine: Engine, tmp_path: Path) -> None:
    log = tmp_path / "alerts.log"
    cfg = config([{"name": "hook", "file": {"path": str(log)}}])
    evaluate_alerts(db_engine, cfg, [unknown("adyen")], T0)
    deliver_pending(db_engine, cfg, T0)
    line = json.loads(log.read_text().splitlines()[0])
    assert line["alerts"][0]["summary"] == "3 adyen payments unknown"
    assert line["alerts"][0]["runbook_url"].endswith("/runbooks?alert=UnknownOutcomesStale")


def test_a_new_group_waits_group_wait_to_gather_its_alerts(db_engine: Engine) -> None:
    cfg = parse_config({"route": {"receiver": "hook", "group_by": ["alertname"],
                                  "group_wait": "30s"},
                        "receivers": [{"name": "hook", "file": {"path": "unused"}}]}, "t.yaml")
    first = evaluate_alerts(db_engine, cfg, [unknown("adyen")], T0)
    second = evaluate_alerts(db_engine, cfg, [unknown("adyen"), unknown("stripe")],
                             T0 + timedelta(seconds=20))
    assert first.notifications == second.notifications == 0
    evaluate_alerts(db_engine, cfg, [unknown("adyen"), unknown("stripe")],
                    T0 + timedelta(seconds=31))
    sent = notifications(db_engine)
    assert len(sent) == 1 and len(sent[0]["alerts"]) == 2  # both, in one notification
