"""Overview: engineering on the left, finance on the right."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import queries, ui

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


@st.fragment(run_every=ctx.refresh_s)
def engineering_panel() -> None:
    states = ui.query(ctx, "payment_states", f)
    unknown = ui.query(ctx, "unknown_outcomes", f)
    risk = ui.query(ctx, "duplicate_risk", f)
    now = ui.now()
    st.markdown("**Payment states**")
    if states.empty:
        st.info("No payments created in this range: widen the days in the sidebar.")
    else:
        shown = states.assign(amount=[queries.money(a, c) for a, c in
                                      zip(states["amount_minor"], states["currency"],
                                          strict=True)])
        ui.light_table(shown[["state", "currency", "payments", "amount"]])
    flow = ui.query(ctx, "state_flow", f)
    st.markdown("**Flow between states** (transitions made in the range)")
    if flow.empty:
        st.caption("No transitions in this range.")
    else:
        flow = flow.assign(step=flow["from"] + " → " + flow["to"])
        st.altair_chart(alt.Chart(flow).mark_bar().encode(
            x=alt.X("payments:Q", title="payments"),
            y=alt.Y("step:N", sort="-x", title=None),
            tooltip=["from", "to", "payments"]), width="stretch")
    st.markdown("**Duplicate risk** per provider")
    if risk.empty:
        st.caption("No idempotent replays, key conflicts, in-flight rejections or shadow-mode "
                   "detections in this range.")
    else:
        ui.light_table(risk.rename(columns={"in_flight": "in-flight rejected",
                                            "shadow_replay": "shadow: would replay",
                                            "shadow_conflict": "shadow: would conflict"}))
    if unknown:
        ui.light_table(pd.DataFrame([{"provider": u.provider, "unknown open": u.open,
                                      "oldest (min)": u.age_minutes(now)} for u in unknown]))


@st.fragment(run_every=ctx.refresh_s)
def finance_panel() -> None:
    recon = ui.query(ctx, "reconciliation_status", f)
    dupes = ui.query(ctx, "duplicate_charges", f)
    st.markdown("**Reconciliation** per provider and settlement day")
    if recon.empty:
        st.info("No settlement days reconciled in this range — `paysignal reconcile --dir` "
                "(the worker does it with PAYSIGNAL_SETTLEMENT_DIR set), or `paysignal demo`.")
    else:
        ui.light_table(recon.assign(matched_pct=[f"{p:.2f} %" if p == p else "—"
                                                 for p in recon["matched_pct"]])
                       .rename(columns={"matched_pct": "matched", "matched": "lines matched",
                                        "breaks": "breaks found"})
                       .drop(columns=["signed_off"]))
    st.markdown("**Duplicate charges found by reconciliation**")
    if dupes.empty:
        st.caption("None in this range: no provider charged any payment twice.")
    else:
        ui.light_table(dupes.assign(charged=[queries.money(a, c) for a, c in zip(
            dupes["charged_minor"], dupes["currency"], strict=True)])
            .drop(columns=["charged_minor"]))


@st.fragment(run_every=ctx.refresh_s)
def slo_and_alerts_panel() -> None:
    st.subheader("SLO error budgets")
    history = ui.query(ctx, "slo_history", f.since)
    latest = queries.latest_slos(history)
    if latest.empty:
        st.info("No SLO evaluations in this range — the worker evaluates every minute, or run "
                "`paysignal slo evaluate`.")
    else:
        burn = history.assign(rate=[r.get("1h", 0.0) for r in history["burn_rates"]])
        sparks = burn.groupby("slo")["rate"].apply(lambda s: list(s.tail(30))).to_dict()
        ui.light_table(pd.DataFrame({
            "SLO": latest["display_name"], "owner": latest["owner"],
            "budget left": [f"{100 * b:.1f} %" for b in latest["budget_remaining"]],
            "1h burn rate (last 30)": [f"{queries.sparkline(sparks.get(s, []))} "
                                       f"{sparks.get(s, [0])[-1]:.1f}×" for s in latest["slo"]],
            "firing": [", ".join(queries.firing_conditions(c)) or "—"
                       for c in latest["conditions"]],
        }))
    st.subheader("Firing alerts")
    firing = ui.query(ctx, "alerts", "firing", None, f)
    if firing.empty:
        st.caption("No alert is firing.")
    else:
        ui.light_table(firing.assign(runbook=[f"[runbook]({u})" for u in firing["runbook"]])
                       [["alert", "severity", "team", "summary", "runbook"]])

headline()
engineering, finance = st.columns(2, gap="large")
with engineering:
    engineering_panel()
with finance:
    finance_panel()
slo_and_alerts_panel()
