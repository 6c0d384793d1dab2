"""The dashboard's reads over time on the seeded demo day (its adyen incident), on SQLite and
PostgreSQL: every figure drawn is the database's, and the incident shows where it should."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, update

from dashboard import charts, timelines
from dashboard.filters import Filters
from engine.storage.tables import (
    alert_firings,
    duplicate_risk_events,
    payment_transitions,
    payments,
    provider_attempts,
    recon_breaks,
    slo_evaluations,
)
from tests.support.dashboard import light_table, metric, open_page

pytestmark = pytest.mark.slow  # every test here opens the seeded demo day

WIDE = Filters(datetime.now(UTC).date() - timedelta(days=6), datetime.now(UTC).date()
               + timedelta(days=1))


def _window(engine: Engine) -> timelines.Window:
    window = timelines.activity_window(engine, WIDE)
    assert window is not None
    return window


def test_the_time_series_count_what_the_tables_hold(seeded_engine: Engine) -> None:
    window = _window(seeded_engine)
    assert window.minutes in timelines.BUCKET_MINUTES
    assert (window.end - window.start) / timedelta(minutes=window.minutes) \
        <= timelines.MAX_POINTS
    frame = timelines.timeline(seeded_engine, WIDE, window)
    a, t, e = provider_attempts.c, payment_transitions.c, duplicate_risk_events.c
    with seeded_engine.connect() as conn:
        calls: dict[str, int] = dict(conn.execute(select(a.outcome, func.count()).where(
            a.operation == "authorize").group_by(a.outcome)).all())
        opened = conn.execute(select(func.count()).where(t.to_state == "unknown")).scalar_one()
        resolved = conn.execute(select(func.count()).where(t.from_state == "unknown"))\
            .scalar_one()
        risk: dict[str, int] = dict(conn.execute(select(e.outcome, func.count()).group_by(e.outcome)).all())
    shown = frame.groupby("series")["value"].sum().to_dict()
    expected: dict[str, int] = {}
    for outcome, n in calls.items():
        series = timelines.CALL_SERIES[outcome]
        expected[series] = expected.get(series, 0) + n
    assert {k: shown.get(k, 0) for k in expected} == expected
    assert shown["unknown opened"] == opened and shown["unknown resolved"] == resolved
    for outcome, series in timelines.RISK_SERIES.items():
        assert shown.get(series, 0) == risk.get(outcome, 0)
    assert set(frame["at"].dt.minute % window.minutes) == {0}  # whole buckets


def test_the_incidents_failures_fall_inside_the_bands_of_its_alerts(
        seeded_engine: Engine) -> None:
    """The demo's adyen incident: its failed authorizations and the alerts it raised overlap
    in time, and the sentence under the chart says so."""
    window = _window(seeded_engine)
    frame = timelines.timeline(seeded_engine, WIDE, window)
    bands = timelines.alert_bands(seeded_engine, window, "adyen")
    failing = frame[(frame["provider"] == "adyen")
                    & frame["series"].isin(timelines.FAILING)]["at"]
    assert not failing.empty and not bands.empty
    step = timedelta(minutes=window.minutes)
    inside = [at for at in failing
              if any(b.start < at + step and b.end > at for b in bands.itertuples())]
    assert len(inside) >= len(failing) - 1  # the first failure raises the alert a minute on
    summary = charts.spike_summary(frame, bands, window)
    assert summary.startswith("Errors and time-outs: adyen, ")
    assert "alerts firing then: " in summary and "SLOBurnRate" in summary
    rates = timelines.failure_rates(frame)
    assert rates["percent"].between(0, 100).all()
    assert rates[rates["provider"] == "adyen"]["percent"].max() > 0


def test_every_period_an_alert_fired_is_a_band_clipped_to_the_window(
        seeded_engine: Engine) -> None:
    window = _window(seeded_engine)
    with seeded_engine.connect() as conn:
        periods = conn.execute(select(alert_firings)).all()
    bands = timelines.alert_bands(seeded_engine, window)
    assert len(bands) == len(periods) > 0
    assert (bands["start"] >= window.start).all() and (bands["end"] <= window.end).all()
    assert set(bands[bands["end"] == window.end]["alert"]) >= {
        p.name for p in periods if p.ends_at is None}
    only_paypal = timelines.alert_bands(seeded_engine, window, "paypal")
    assert set(only_paypal["provider"]) <= {"", "paypal"}


def test_provider_tiles_and_money_at_risk_read_now(seeded_engine: Engine) -> None:
    p = payments.c
    with seeded_engine.begin() as conn:
        stuck = conn.execute(select(p.id, p.provider, p.currency, p.amount_minor)
                             .where(p.state == "captured", p.provider == "adyen")
                             .order_by(p.id).limit(3)).all()
        conn.execute(update(payments).where(p.id.in_([s.id for s in stuck[:2]]))
                     .values(state="unknown"))
        conn.execute(update(payments).where(p.id == stuck[2].id)
                     .values(state="awaiting_confirmation"))
    now = datetime.now(UTC)
    tiles = {r["provider"]: r for r in
             timelines.provider_tiles(seeded_engine, WIDE, now).to_dict("records")}
    a = provider_attempts.c
    with seeded_engine.connect() as conn:
        authorizations: dict[str, int] = dict(conn.execute(select(a.provider, func.count()).where(
            a.operation == "authorize").group_by(a.provider)).all())
        failed = conn.execute(select(func.count()).where(
            a.operation == "authorize", a.provider == "adyen",
            a.outcome.in_(["retryable_error", "unknown", "rejected"]))).scalar_one()
    assert {k: v["authorizations"] for k, v in tiles.items()} == authorizations
    assert tiles["adyen"]["success"] == pytest.approx(1 - failed / authorizations["adyen"])
    assert tiles["adyen"]["unknown_open"] == 2 and tiles["adyen"]["awaiting_open"] == 1
    assert tiles["adyen"]["unknown_oldest_min"] is not None
    at_risk = timelines.money_at_risk(seeded_engine, WIDE)
    unknown = at_risk[at_risk["kind"] == "unknown outcome"]
    expected: dict[str, int] = {}
    for s in stuck[:2]:
        expected[s.currency] = expected.get(s.currency, 0) + s.amount_minor
    assert dict(zip(unknown["currency"], unknown["amount_minor"], strict=True)) == expected
    b = recon_breaks.c
    with seeded_engine.connect() as conn:
        open_breaks = conn.execute(select(func.count()).where(
            b.status.in_(("open", "investigating")),
            b.settled_on.between(WIDE.start, WIDE.end))).scalar_one()
    assert int(at_risk[at_risk["kind"] == "open breaks"]["count"].sum()) == open_breaks
    assert not at_risk.duplicated(["currency", "kind"]).any()  # never across currencies


def test_the_payments_an_incident_touched_and_what_was_done_about_them(
        seeded_engine: Engine) -> None:
    window = _window(seeded_engine)
    affected = timelines.affected_payments(seeded_engine, "adyen", window.start, window.end)
    t, p = payment_transitions.c, payments.c
    with seeded_engine.connect() as conn:
        went_unknown = set(conn.execute(
            select(t.payment_id).join_from(payment_transitions, payments,
                                           p.id == t.payment_id)
            .where(p.provider == "adyen", t.to_state == "unknown")).scalars())
        amounts = dict(conn.execute(select(p.id, p.amount_minor)
                                    .where(p.id.in_(list(affected["payment"])))).all())
    assert went_unknown and went_unknown <= set(affected["payment"])
    assert not affected["payment"].duplicated().any()
    assert dict(zip(affected["payment"], affected["amount_minor"], strict=True)) == amounts
    done = timelines.resolutions(seeded_engine, list(affected["payment"]), window.start)
    out_of_unknown = done[done["from"] == "unknown"]
    assert set(out_of_unknown["payment"]) == went_unknown  # every one resolved, and by whom
    assert out_of_unknown["by"].str.len().gt(0).all()


def test_an_slo_over_its_own_window_ends_at_its_stored_budget(seeded_engine: Engine) -> None:
    s = slo_evaluations.c
    with seeded_engine.connect() as conn:
        stored = {r.slo: json.loads(r.result) for r in conn.execute(
            select(s.slo, s.result).order_by(s.at, s.id))}
    checked = 0
    for name, result in stored.items():
        start = datetime.fromisoformat(result["window"]["start"])
        at = datetime.fromisoformat(result["at"])
        over = timelines.slo_window(seeded_engine, name, start, at, result["objective"])
        if over.empty:
            continue  # the reconciliation SLOs keep no per-minute counts
        assert len(over) <= timelines.MAX_POINTS
        assert int(over["total"].sum()) == result["events"]["total"]
        assert max(0.0, float(over["budget_left"].iloc[-1])) == pytest.approx(
            result["budget_remaining"], abs=1e-4)
        checked += 1
    assert checked >= 5


def test_the_incident_view_an_alert_links_to_lists_the_affected_payments(
        monkeypatch, seeded_url, seeded_engine) -> None:
    from urllib.parse import parse_qsl, urlsplit

    from dashboard import queries

    firing = queries.alerts(seeded_engine)
    page = firing[firing["alert"] == "SLOBurnRatePage"].iloc[0]
    link = urlsplit(page["incident"])
    assert link.path == "/incident"
    at = open_page(monkeypatch, seeded_url, "incident", params=dict(parse_qsl(link.query)))
    assert metric(at, "Severity") == "page" and metric(at, "Owner") == "payments"
    assert metric(at, "Status") in ("firing", "resolved")
    assert any(m.value.startswith("**Authorization technical success (adyen)")
               for m in at.markdown)
    rows = light_table(at, "payment", "became", "now", "amount")
    assert rows and all(r["payment"].startswith("[pay_") and "](payments?payment=pay_"
                        in r["payment"] for r in rows)
    assert any(r["became"] == "unknown" for r in rows)
    assert light_table(at, "payment", "from", "to", "by")  # what was done about them
    unknown = open_page(monkeypatch, seeded_url, "incident", params={"alert": "NoSuchAlert"})
    assert any("alert: 'NoSuchAlert' is not an alert" in e.value for e in unknown.error)
    listed = open_page(monkeypatch, seeded_url, "incident")
    assert light_table(listed, "alert", "started", "ended", "open")
