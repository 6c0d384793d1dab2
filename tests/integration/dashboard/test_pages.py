"""Every page on a seeded demo day (SQLite and PostgreSQL): the figures shown are the
database's, and the writes go through the services with the user on the audit trail."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import Engine, func, select

from dashboard.filters import Filters
from engine.storage.tables import (
    alert_silences,
    alert_states,
    idempotency_keys,
    outbox,
    payment_transitions,
    payments,
    recon_break_audit,
    recon_breaks,
    recon_checkpoints,
    slo_evaluations,
)
from tests.support.dashboard import light_table, metric, open_page

pytestmark = pytest.mark.slow  # every test here opens the seeded demo day


def scalar(engine: Engine, query) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_overview_shows_the_databases_figures(monkeypatch, seeded_url, seeded_engine) -> None:
    at = open_page(monkeypatch, seeded_url)
    assert metric(at, "Payments") == f"{scalar(seeded_engine, select(func.count()).select_from(payments)):,}"
    shown = Filters.default()  # the last week through tomorrow
    open_breaks = scalar(seeded_engine, select(func.count()).select_from(recon_breaks).where(
        recon_breaks.c.status.in_(("open", "investigating")),
        recon_breaks.c.settled_on.between(shown.start, shown.end)))
    assert open_breaks > 0 and metric(at, "Open breaks") == f"{open_breaks:,}"
    dupes = scalar(seeded_engine, select(func.count()).select_from(recon_breaks).where(
        recon_breaks.c.kind == "duplicate_charge",
        recon_breaks.c.settled_on.between(shown.start, shown.end)))
    assert metric(at, "Duplicate charges found") == f"{dupes:,}"
    with seeded_engine.connect() as conn:
        matched, breaks = conn.execute(select(func.sum(recon_checkpoints.c.matched_count),
                                              func.sum(recon_checkpoints.c.break_count)).where(
            recon_checkpoints.c.settled_on.between(shown.start, shown.end))).one()
    assert metric(at, "Matched") == f"{100 * matched / (matched + breaks):.2f} %"
    with seeded_engine.connect() as conn:
        by_state = dict(conn.execute(select(payments.c.state, func.count())
                                     .group_by(payments.c.state)).all())
        currencies = sorted(conn.execute(select(payments.c.currency).distinct()).scalars())
    pivot = light_table(at, "state", *currencies)  # states by currency, not a long list
    assert {r["state"]: sum(int(r[c]) for c in currencies) for r in pivot} == by_state
    at_risk = light_table(at, "currency", "open breaks")  # per currency, count in brackets
    assert sum(int(r["open breaks"].rsplit("(", 1)[1].rstrip(")")) for r in at_risk
               if r["open breaks"] != "—") == open_breaks
    with seeded_engine.connect() as conn:
        providers = sorted(conn.execute(select(payments.c.provider).distinct()).scalars())
    for provider in providers:  # each provider's tile, its success against its objective
        assert metric(at, f"{provider} authorization success").endswith("%")
    assert any(c.value.startswith("Errors and time-outs: adyen") and "alerts firing then: "
               in c.value for c in at.caption), [c.value for c in at.caption]
    assert "🔒 No login configured" in at.caption[0].value  # said on every page


def test_provider_filter_from_the_url_narrows_every_figure(monkeypatch, seeded_url,
                                                           seeded_engine) -> None:
    at = open_page(monkeypatch, seeded_url, params={"provider": "paypal"})
    paypal = scalar(seeded_engine, select(func.count()).select_from(payments)
                     .where(payments.c.provider == "paypal"))
    assert 0 < paypal < scalar(seeded_engine, select(func.count()).select_from(payments))
    assert metric(at, "Payments") == f"{paypal:,}"
    assert at.selectbox(key="filter_provider").value == "paypal"  # the sidebar shows it
    assert at.query_params["provider"] == "paypal"


def test_a_link_with_other_days_shows_those_days(monkeypatch, seeded_url) -> None:
    at = open_page(monkeypatch, seeded_url, params={"from": "2026-01-01", "to": "2026-01-02"})
    assert at.selectbox(key="filter_days").value is None  # "custom dates…"
    assert at.sidebar.date_input[0].value == (date(2026, 1, 1), date(2026, 1, 2))
    assert metric(at, "Payments") == "0"
    assert any("No payments created in this range" in i.value for i in at.info)
    at.selectbox(key="filter_days").select(30).run()  # a preset rewrites the link
    assert at.query_params["from"] == str(Filters.last(30).start)
    assert metric(at, "Payments") != "0"


def test_a_bad_filter_in_the_link_is_named_and_ignored(monkeypatch, seeded_url) -> None:
    at = open_page(monkeypatch, seeded_url, params={"from": "yesterday"})
    assert any("`from`" in w.value and "not a date" in w.value for w in at.sidebar.warning)
    assert metric(at, "Payments") != "0"
    bogus = open_page(monkeypatch, seeded_url, params={"provider": "bogus"})
    assert any("`provider` was ignored: 'bogus' is not a provider" in w.value
               for w in bogus.sidebar.warning)
    assert metric(bogus, "Payments") == metric(at, "Payments")  # all providers, not none


@pytest.mark.parametrize("by", ["id", "reference", "idempotency_key"])
def test_payments_finds_a_payment_and_shows_its_whole_story(monkeypatch, seeded_url,
                                                            seeded_engine, by) -> None:
    with seeded_engine.connect() as conn:
        pid, reference = conn.execute(select(payments.c.id, payments.c.reference)
                                      .where(payments.c.state == "captured")
                                      .order_by(payments.c.id).limit(1)).one()
        key = conn.execute(select(idempotency_keys.c.key).where(
            idempotency_keys.c.payment_id == pid).limit(1)).scalar_one()
        transitions = conn.execute(select(func.count()).select_from(payment_transitions).where(
            payment_transitions.c.payment_id == pid)).scalar_one()
        events = conn.execute(select(func.count()).select_from(outbox).where(
            outbox.c.payment_id == pid)).scalar_one()
    search = {"id": pid, "reference": reference, "idempotency_key": key}[by]
    at = open_page(monkeypatch, seeded_url, "payments")
    at.text_input(key="payment_search").input(search).run()
    assert not at.exception
    assert any(pid in s.value and "captured" in s.value for s in at.subheader)
    tables = {m.value.strip("*"): i for i, m in enumerate(at.markdown) if m.value.startswith("**")}
    frames = at.dataframe
    offset = 1 if len(frames) == 6 else 0  # several payments share the reference: a list first
    trail, _, ledger, events_frame = (frames[offset].value, frames[offset + 1].value,
                                      frames[offset + 2].value, frames[offset + 3].value)
    assert len(trail) == transitions and list(trail["to"])[-1] == "captured"
    assert len(events_frame) == events
    assert set(ledger["side"]) == {"debit", "credit"}
    assert "Audit trail" in tables


def test_payments_says_when_nothing_matches(monkeypatch, seeded_url) -> None:
    at = open_page(monkeypatch, seeded_url, "payments")
    at.text_input(key="payment_search").input("no-such-thing").run()
    assert any("No payment has" in w.value for w in at.warning)


def _first_open_break(engine: Engine) -> str:
    with engine.connect() as conn:
        return conn.execute(select(recon_breaks.c.id).where(recon_breaks.c.status == "open")
                            .order_by(recon_breaks.c.settled_on, recon_breaks.c.provider,
                                      recon_breaks.c.kind, recon_breaks.c.id).limit(1)).scalar_one()


def test_finance_assigns_a_break_through_the_service_and_the_audit_names_them(
        monkeypatch, seeded_url, seeded_engine) -> None:
    monkeypatch.setenv("PAYSIGNAL_DASHBOARD_LOCAL_ROLES", "finance")
    at = open_page(monkeypatch, seeded_url, "reconciliation")
    break_id = _first_open_break(seeded_engine)
    assert at.selectbox(key="break_id").value == break_id
    at.text_input(key="assign_owner").input("dana")
    at.text_input(key="assign_note").input("checking the provider portal")
    at.button(key="assign_submit").click().run()
    assert not at.exception and any("assigned to dana" in s.value for s in at.success)
    with seeded_engine.connect() as conn:
        row = conn.execute(select(recon_breaks.c.status, recon_breaks.c.owner)
                           .where(recon_breaks.c.id == break_id)).one()
        audit = conn.execute(select(recon_break_audit.c.actor, recon_break_audit.c.note)
                             .where(recon_break_audit.c.break_id == break_id)).all()
    assert tuple(row) == ("investigating", "dana")
    assert audit[-1].actor == "tester (dashboard, local)"
    assert audit[-1].note.startswith("checking the provider portal")


def test_a_move_without_a_note_is_refused_with_the_field_named(monkeypatch, seeded_url,
                                                               seeded_engine) -> None:
    monkeypatch.setenv("PAYSIGNAL_DASHBOARD_LOCAL_ROLES", "finance")
    at = open_page(monkeypatch, seeded_url, "reconciliation")
    at.selectbox(key="move_to").select("resolved")
    at.button(key="move_submit").click().run()
    assert any("note" in e.value for e in at.error)
    with seeded_engine.connect() as conn:
        assert conn.execute(select(recon_breaks.c.status).where(
            recon_breaks.c.id == _first_open_break(seeded_engine))).scalar_one() == "open"


def test_sign_off_needs_an_override_while_breaks_are_open(monkeypatch, seeded_url,
                                                          seeded_engine) -> None:
    monkeypatch.setenv("PAYSIGNAL_DASHBOARD_LOCAL_ROLES", "finance")
    at = open_page(monkeypatch, seeded_url, "reconciliation")
    picked = at.selectbox(key="signoff_day").value
    assert picked is not None
    provider, day_text = picked.split(" ")
    day = date.fromisoformat(day_text)
    with seeded_engine.connect() as conn:
        open_here = conn.execute(select(func.count()).select_from(recon_breaks).where(
            recon_breaks.c.provider == provider, recon_breaks.c.settled_on == day,
            recon_breaks.c.status == "open")).scalar_one()
    at.button(key="signoff_submit").click().run()
    if open_here:
        assert any("override" in e.value for e in at.error)
        at.text_input(key="signoff_override").input("accepted: provider confirmed by mail")
        at.button(key="signoff_submit").click().run()
    assert any("signed off" in s.value for s in at.success)
    with seeded_engine.connect() as conn:
        signed_by = conn.execute(select(recon_checkpoints.c.signed_off_by).where(
            recon_checkpoints.c.provider == provider,
            recon_checkpoints.c.settled_on == day)).scalar_one()
    assert signed_by == "tester (dashboard, local)"


def test_a_viewer_cannot_work_breaks_silence_alerts_or_change_toggles(monkeypatch,
                                                                      seeded_url) -> None:
    monkeypatch.setenv("PAYSIGNAL_DASHBOARD_LOCAL_ROLES", "viewer")
    at = open_page(monkeypatch, seeded_url, "reconciliation")
    for key in ("assign_submit", "move_submit", "signoff_submit"):
        assert at.button(key=key).disabled
    assert any("finance role" in c.value for c in at.caption)
    at = open_page(monkeypatch, seeded_url, "alerts")
    for key in ("silence_submit", "toggle_submit"):
        assert at.button(key=key).disabled


def test_engineering_silences_an_alert_and_expires_it(monkeypatch, seeded_url,
                                                      seeded_engine) -> None:
    monkeypatch.setenv("PAYSIGNAL_DASHBOARD_LOCAL_ROLES", "engineering")
    at = open_page(monkeypatch, seeded_url, "alerts")
    at.text_input(key="silence_matchers").input('alertname="DuplicateChargeFound"')
    at.text_input(key="silence_comment").input("finance is on it")
    at.button(key="silence_submit").click().run()
    assert any("silence created" in s.value for s in at.success), [e.value for e in at.error]
    with seeded_engine.connect() as conn:
        sil = conn.execute(select(alert_silences)).one()
    assert sil.author == "tester (dashboard, local)"
    assert json.loads(sil.matchers) == ['alertname="DuplicateChargeFound"']
    at.run()
    at.button(key="expire_submit").click().run()
    with seeded_engine.connect() as conn:
        assert conn.execute(select(alert_silences.c.expired_by)).scalar_one() \
            == "tester (dashboard, local)"


def test_alerts_page_counts_what_is_firing(monkeypatch, seeded_url, seeded_engine) -> None:
    firing = scalar(seeded_engine, select(func.count()).select_from(alert_states)
                    .where(alert_states.c.status == "firing"))
    at = open_page(monkeypatch, seeded_url, "alerts")
    assert firing > 0 and metric(at, "Firing") == str(firing)
    shown = at.dataframe[0].value
    assert (shown["status"] == "firing").sum() == firing
    assert all(url.endswith(f"/runbooks?alert={name}")
               for url, name in zip(shown["runbook"], shown["alert"], strict=True))


def test_the_runbooks_page_serves_the_runbook_an_alert_links_to(monkeypatch, seeded_url) -> None:
    from alerts.catalogue import BY_NAME

    at = open_page(monkeypatch, seeded_url, "runbooks", params={"alert": "OutboxBacklog"})
    assert at.selectbox(key="runbook_alert").value == "OutboxBacklog"
    assert any(m.value.strip() == BY_NAME["OutboxBacklog"].runbook.read_text().strip()
               for m in at.markdown)
    unknown = open_page(monkeypatch, seeded_url, "runbooks", params={"alert": "Nope"})
    assert any("'Nope' is not an alert paysignal raises" in w.value for w in unknown.warning)


def test_slo_page_shows_the_latest_stored_evaluation(monkeypatch, seeded_url,
                                                     seeded_engine) -> None:
    s = slo_evaluations.c
    with seeded_engine.connect() as conn:
        name, result = conn.execute(select(s.slo, s.result).order_by(s.slo, s.at.desc())
                                    .limit(1)).one()
    latest = json.loads(result)
    at = open_page(monkeypatch, seeded_url, "slos", params={"slo": name})
    assert at.selectbox(key="slo_name").value == name
    assert metric(at, "Attained") == f"{latest['sli']:.3%}"
    assert metric(at, "Error budget left") == f"{latest['budget_remaining']:.1%}"
    assert metric(at, "Events in window") == f"{latest['events']['total']:,}"
    burn = next(m.value for m in at.markdown if m.value.startswith("**Burn rates per window"))
    for window, rate in latest["burn_rates"].items():
        assert f"{window} {rate:.2f}×" in burn
    assert not any("# SLO review" in m.value for m in at.markdown)  # built on request only
    at.toggle(key="slo_report").set_value(True).run()
    assert any(m.value.startswith("# SLO review — last 7 days") for m in at.markdown)


def test_engineering_changes_a_rollout_toggle_with_the_user_on_the_audit(
        monkeypatch, seeded_url, seeded_engine) -> None:
    from engine.payments.toggles import audit_trail, current_modes

    monkeypatch.setenv("PAYSIGNAL_DASHBOARD_LOCAL_ROLES", "engineering")
    at = open_page(monkeypatch, seeded_url, "alerts")
    at.selectbox(key="toggle_provider").select("paypal")
    at.selectbox(key="toggle_mode").select("shadow")
    at.button(key="toggle_submit").click().run()
    assert any("reason" in e.value for e in at.error)  # a change needs a reason
    at.text_input(key="toggle_reason").input("measure before enforcing")
    at.button(key="toggle_submit").click().run()
    assert any("paypal / *: enforce → shadow" in s.value for s in at.success)
    assert [(t["provider"], t["method_type"], t["mode"])
            for t in current_modes(seeded_engine)] == [("paypal", "*", "shadow")]
    latest = audit_trail(seeded_engine, 1)[0]
    assert latest["actor"] == "tester (dashboard, local)"
    assert latest["reason"] == "measure before enforcing"
    at.button(key="toggle_submit").click().run()  # the same again changes nothing
    assert any("paypal / * is already shadow: nothing changed" in s.value for s in at.success)
    assert len(audit_trail(seeded_engine)) == 1
    # cards at paypal keep enforcing while the rest is measured
    at.selectbox(key="toggle_method_type").select("card")
    at.selectbox(key="toggle_mode").select("enforce")
    at.button(key="toggle_submit").click().run()
    assert any("paypal / card: inherited → enforce" in s.value for s in at.success)
    assert ("paypal", "card", "enforce") in [(t["provider"], t["method_type"], t["mode"])
                                            for t in current_modes(seeded_engine)]
    # the demo's adyen incident spent its budget: the policy says so beside the toggles
    assert any("Error-budget policy for adyen" in w.value
               and "freeze risky rollouts for provider adyen" in w.value for w in at.warning)


def test_slo_history_reads_a_bounded_even_sample_with_the_latest(seeded_engine) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from dashboard.queries import slo_history

    s = slo_evaluations.c
    with seeded_engine.connect() as conn:
        name, result = conn.execute(select(s.slo, s.result).limit(1)).one()
    start = datetime.now(UTC) - timedelta(days=2)
    with seeded_engine.begin() as conn:  # a worker evaluating every minute for 2 days
        conn.execute(insert(slo_evaluations), [
            {"slo": name, "at": start + timedelta(minutes=m), "evaluated_at": start,
             "backend": "database", "result": result} for m in range(2880)])
    history = slo_history(seeded_engine, start, name, points=100)
    assert len(history) == 100
    assert history["at"].iloc[0] == start and history["at"].is_monotonic_increasing
    with seeded_engine.connect() as conn:
        latest = conn.execute(select(func.max(s.at)).where(s.slo == name)).scalar_one()
    assert history["at"].iloc[-1].replace(tzinfo=None) == latest.replace(tzinfo=None)


def _latest_evaluations(engine: Engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r.slo: json.loads(r.result) for r in conn.execute(
            select(slo_evaluations).order_by(slo_evaluations.c.at, slo_evaluations.c.id))}


def test_the_slo_list_shows_every_slo_most_urgent_first_with_budget_bars_and_firing(
        monkeypatch, seeded_url, seeded_engine) -> None:
    latest = _latest_evaluations(seeded_engine)
    at = open_page(monkeypatch, seeded_url, "slos")
    listed = [m.value.split("](slos?slo=", 1)[1].split(")", 1)[0] for m in at.markdown
              if m.value.startswith("[") and "](slos?slo=" in m.value]
    assert sorted(listed) == sorted(latest)  # every SLO on one screen
    burning = "authorization-technical-success-adyen"  # the demo's incident
    assert listed[0] == burning
    bars = [p.proto.text for p in at.get("progress")]
    assert bars == [f"{latest[n]['budget_remaining']:.1%}" for n in listed]
    budgets = {n: latest[n]["budget_remaining"] for n in listed}
    assert budgets[burning] < min(v for n, v in budgets.items() if n != burning)
    firing = {f"{c['severity']} ({c['tier']})" for r in latest.values()
              for c in r["conditions"] if not c["inhibited_by"]}
    assert firing and all(any(f"badge[{c}]" in m.value for m in at.markdown) for c in firing)


def test_the_slo_page_opens_on_the_burning_slo_with_readable_conditions(
        monkeypatch, seeded_url, seeded_engine) -> None:
    at = open_page(monkeypatch, seeded_url, "slos")
    assert at.selectbox(key="slo_name").value == "authorization-technical-success-adyen"
    conditions = light_table(at, "severity", "tier", "long window", "short window",
                             "threshold", "state")
    assert "firing" in {c["state"] for c in conditions}
    assert not any("None" in v for c in conditions for v in c.values())
    assert not at.dataframe  # no empty placeholder tables
    # an SLO without events in its window reads "no data", never 100 %
    from datetime import UTC, datetime

    from sqlalchemy import delete

    from engine.storage.tables import sli_minutes, sli_rollup_marks, webhook_events
    from slo.backends import make_backend
    from slo.evaluate import evaluate_all
    from slo.spec import load_definitions

    with seeded_engine.begin() as conn:  # as if no notification had arrived on the day
        conn.execute(delete(webhook_events))
        for table in (sli_minutes, sli_rollup_marks):
            conn.execute(delete(table).where(table.c.slo == "webhook-processing-freshness"))
    freshness = [s for s in load_definitions() if s.name == "webhook-processing-freshness"]
    evaluate_all(seeded_engine, make_backend("database", engine=seeded_engine), freshness,
                 datetime.now(UTC))
    import streamlit as st

    st.cache_data.clear()  # the first page's queries are cached for 10 s
    quiet = open_page(monkeypatch, seeded_url, "slos",
                      params={"slo": "webhook-processing-freshness"})
    assert metric(quiet, "Attained") == "no data"
    assert not any("| severity |" in m.value for m in quiet.markdown)  # no empty table
    assert any("below its threshold" in c.value for c in quiet.caption)


def test_the_money_page_shows_payouts_disputes_fees_and_break_aging(
        monkeypatch, seeded_url, seeded_engine) -> None:
    """The demo day's reports state each provider's payouts and the bank's statement shows
    them arriving (or not); finance sees both, the fees, and how old the open breaks are."""
    from engine.settlement.payouts import list_payouts
    from engine.storage.tables import payouts as payouts_table

    at = open_page(monkeypatch, seeded_url, "money")
    shown = Filters.default()  # the last week through tomorrow
    with seeded_engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(payouts_table).where(
            payouts_table.c.paid_on.between(shown.start, shown.end))).scalar_one()
    listed = [p for p in list_payouts(seeded_engine)
              if shown.start <= p["paid_on"] <= shown.end]
    arrived = sum(1 for p in listed if p["arrived_on"])
    assert total > 0 and metric(at, "Payouts") == f"{total:,}"
    assert metric(at, "Arrived at the bank") == f"{arrived:,}"
    assert metric(at, "In transit") == f"{total - arrived:,}"
    rows = light_table(at, "paid_on", "provider", "payout", "amount", "lines_net", "bank")
    assert {r["payout"] for r in rows} == {str(p["reference"]) for p in listed}
    assert any(r["bank"].startswith("arrived ") for r in rows)
    fees = light_table(at, "provider", "currency", "fees")
    assert {r["provider"] for r in fees} == {"stripe", "adyen", "paypal"}
    aging = light_table(at, "age", "owner", "open_breaks")
    open_breaks = scalar(seeded_engine, select(func.count()).select_from(recon_breaks).where(
        recon_breaks.c.status.in_(("open", "investigating"))))
    assert sum(int(r["open_breaks"]) for r in aging) == open_breaks
