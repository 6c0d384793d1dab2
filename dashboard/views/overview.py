"""Overview: the headline figures; per provider its tiles and its time series with alert
bands; engineering's payment states and duplicate defences beside finance's money at risk,
matching trend, break aging and payouts."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts, queries, timelines, ui

ctx = ui.context()
f = ctx.filters
st.title("Overview")
st.caption(f"{f.start} to {f.end} (UTC)"
           + "".join(f" · {k} {v}" for k, v in (("provider", f.provider),
                                                ("currency", f.currency),
                                                ("merchant", f.merchant)) if v))
if not ctx.has["payments"]:
    st.info("No payments yet — run `paysignal demo` (or send payments to the API) and they "
            "appear here.")
    st.stop()


@st.fragment(run_every=ctx.refresh_s)
def headline() -> None:
    """The answer at a glance, drawn before the detail below it."""
    states = ui.query(ctx, "payment_states", f)
    unknown = ui.query(ctx, "unknown_outcomes", f)
    risk = ui.query(ctx, "duplicate_risk", f)
    recon = ui.query(ctx, "reconciliation_status", f)
    dupes = ui.query(ctx, "duplicate_charges", f)
    now = ui.now()
    open_unknown = sum(u.open for u in unknown)
    oldest = max((u.age_minutes(now) or 0 for u in unknown), default=0)
    engineering, finance = st.columns(2, gap="large")
    with engineering:
        st.subheader("Engineering")
        a, b, c = st.columns(3)
        a.metric("Payments", f"{int(states['payments'].sum()):,}")
        b.metric("Unknown outcomes open", f"{open_unknown:,}",
                 delta=f"oldest {oldest:,.0f} min" if open_unknown else None,
                 delta_color="inverse")
        c.metric("Key conflicts", f"{int(risk['conflict'].sum()) if not risk.empty else 0:,}")
    with finance:
        st.subheader("Finance")
        a, b, c = st.columns(3)
        checked = int(recon["matched"].sum() + recon["breaks"].sum()) if not recon.empty else 0
        a.metric("Matched", f"{100 * int(recon['matched'].sum()) / checked:.2f} %"
                 if checked else "—")
        b.metric("Open breaks", f"{int(recon['open_breaks'].sum()) if not recon.empty else 0:,}")
        c.metric("Duplicate charges found",
                 f"{int(dupes['breaks'].sum()) if not dupes.empty else 0:,}")


def _minutes(value: float | None) -> str | None:
    return None if value is None or pd.isna(value) else f"oldest {value:,.0f} min"


@st.fragment(run_every=ctx.refresh_s)
def provider_tiles() -> None:
    tiles = ui.query(ctx, "provider_tiles", f, ui.now().replace(second=0, microsecond=0))
    latest = queries.latest_slos(ui.query(ctx, "slo_history", f.since))
    objectives = {} if latest.empty else {
        str(r["provider"]): r for r in latest.to_dict("records") if r["provider"]}
    if tiles.empty:
        st.caption("No provider calls in this range.")
        return
    for column, tile in zip(st.columns(len(tiles)), tiles.to_dict("records"), strict=True):
        with column.container(border=True):
            st.markdown(f"**{tile['provider']}** · {tile['authorizations']:,} authorizations")
            a, b = st.columns(2)
            slo = objectives.get(tile["provider"])
            attained = slo["sli"] if slo is not None and not pd.isna(slo["sli"]) \
                else tile["success"]
            a.metric(f"{tile['provider']} authorization success",
                     "—" if attained is None or pd.isna(attained) else f"{attained:.2%}",
                     delta=None if slo is None or attained is None or pd.isna(attained)
                     else f"{100 * (attained - slo['objective']):+.2f} pts vs "
                          f"{slo['objective']:.2%} objective",
                     help="Technical success (declines count as answers) over the SLO's "
                          "window, from its latest evaluation; without one, over this range.")
            p95 = tile["p95_ms"]
            b.metric(f"{tile['provider']} p95 latency", "—" if pd.isna(p95)
                     else "< 1 ms" if p95 < 1 else f"{p95:,.0f} ms",
                     help="Of all its calls in the range, as the engine timed them.")
            c, d = st.columns(2)
            c.metric(f"{tile['provider']} unknown open", f"{tile['unknown_open']:,}",
                     delta=_minutes(tile["unknown_oldest_min"]), delta_color="inverse")
            d.metric(f"{tile['provider']} awaiting confirmation", f"{tile['awaiting_open']:,}",
                     delta=_minutes(tile["awaiting_oldest_min"]), delta_color="inverse")


@st.fragment(run_every=ctx.refresh_s)
def time_series() -> None:
    window = ui.query(ctx, "activity_window", f)
    if window is None:
        st.caption("No provider calls in this range: nothing to draw over time.")
        return
    frame = ui.query(ctx, "timeline", f, window)
    bands = ui.query(ctx, "alert_bands", window, f.provider,
                     ui.now().replace(second=0, microsecond=0))
    rates = timelines.failure_rates(frame)
    for panel in charts.timeline_panels(frame, rates, bands, window):
        st.altair_chart(panel, width="stretch")
    st.caption(charts.spike_summary(frame, bands, window)
               + " Shaded: alerts firing (red a page, amber a ticket); hover for numbers.")


@st.fragment(run_every=ctx.refresh_s)
def engineering_panel() -> None:
    states = ui.query(ctx, "payment_states", f)
    st.markdown("**Payment states** (payments created in the range, by currency)")
    if states.empty:
        st.info("No payments created in this range: widen the days in the sidebar.")
    else:
        pivot = timelines.state_pivot(states)
        ui.light_table(pivot.reset_index())
    risk = ui.query(ctx, "duplicate_risk", f)
    st.markdown("**Duplicate risk** per provider")
    if risk.empty:
        st.caption("No idempotent replays, key conflicts, in-flight rejections or shadow-mode "
                   "detections in this range.")
    else:
        ui.light_table(risk.rename(columns={"in_flight": "in-flight rejected",
                                            "shadow_replay": "shadow: would replay",
                                            "shadow_conflict": "shadow: would conflict"}))


@st.fragment(run_every=ctx.refresh_s)
def finance_panel() -> None:
    at_risk = ui.query(ctx, "money_at_risk", f)
    st.markdown("**Money at risk** by currency (never added across currencies)")
    if at_risk.empty:
        st.caption("Nothing at risk: no unknown or awaiting payment, open break or open "
                   "dispute.")
    else:
        shown = at_risk.assign(amount=[f"{queries.money(m, c)} ({n:,})" for m, c, n in zip(
            at_risk["amount_minor"], at_risk["currency"], at_risk["count"], strict=True)])
        pivot = shown.pivot(index="currency", columns="kind", values="amount").fillna("—")
        ui.light_table(pivot.reset_index())
    recon = ui.query(ctx, "reconciliation_status", f)
    st.markdown("**Matched per provider and settlement day**")
    if recon.empty:
        st.info("No settlement days reconciled in this range — `paysignal reconcile --dir` "
                "(the worker does it with PAYSIGNAL_SETTLEMENT_DIR set), or `paysignal demo`.")
    else:
        trend = recon.dropna(subset=["matched_pct"]).assign(day=lambda d: d["day"].astype(str))
        st.altair_chart(alt.Chart(trend).mark_line(point=True).encode(
            x=alt.X("day:O", title="settlement day", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("matched_pct:Q", title="matched %", scale=alt.Scale(zero=False)),
            color="provider:N",
            tooltip=["provider", "day", "matched_pct", "breaks", "open_breaks", "open_amount"])
            .properties(height=160), width="stretch")
    aging, payouts = st.columns(2)
    with aging:
        st.markdown("**Open breaks by age**")
        ages = ui.query(ctx, "break_aging", f)
        if ages.empty:
            st.caption("No open break.")
        else:
            order = [name for name, _ in queries.AGE_BUCKETS]
            st.altair_chart(alt.Chart(ages).mark_bar().encode(
                x=alt.X("age:N", sort=order, title=None, axis=alt.Axis(labelAngle=0)),
                y=alt.Y("open_breaks:Q", title="open breaks"), color="owner:N",
                tooltip=["age", "owner", "open_breaks"]).properties(height=160),
                width="stretch")
    with payouts:
        st.markdown("**Payouts** expected and arrived")
        paid = ui.query(ctx, "payouts_view", f)
        if paid.empty:
            st.caption("No payout in this range.")
        else:
            counted = paid.assign(status=["in transit" if b == "in transit" else "arrived"
                                          for b in paid["bank"]])
            st.altair_chart(alt.Chart(counted).mark_bar().encode(
                x=alt.X("paid_on:O", title="paid on", axis=alt.Axis(labelAngle=0)),
                y=alt.Y("count():Q", title="payouts"),
                color=alt.Color("status:N", scale=alt.Scale(domain=["arrived", "in transit"],
                                                            range=["#4c9a5f", "#edae49"])),
                tooltip=["paid_on", "provider", "status", "count()"]).properties(height=160),
                width="stretch")


@st.fragment(run_every=ctx.refresh_s)
def firing_alerts() -> None:
    st.subheader("Firing alerts")
    firing = ui.query(ctx, "alerts", "firing", None, f)
    if firing.empty:
        st.caption("No alert is firing.")
    else:
        ui.light_table(firing.assign(
            incident=[f"[open]({u})" for u in firing["incident"]],
            runbook=[f"[runbook]({u})" for u in firing["runbook"]])
            [["alert", "severity", "team", "summary", "incident", "runbook"]])


headline()
provider_tiles()
time_series()
engineering, finance = st.columns(2, gap="large")
with engineering:
    engineering_panel()
with finance:
    finance_panel()
firing_alerts()
