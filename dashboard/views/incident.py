"""Incident: the page an alert's link opens (alert, provider or SLO, start in the URL): the
alert with its numbers, owner and runbook; the provider's time series around it; the payments
it touched, with their amounts and audit trails; and what was done about them."""

from datetime import datetime, timedelta

import pandas as pd
import streamlit as st

from alerts.catalogue import BY_NAME
from dashboard import charts, queries, timelines, ui
from dashboard.filters import Filters
from slo.links import INCIDENT_LABELS, STARTS_FORMAT, incident_url, runbook_url

BEFORE = timedelta(hours=1)  # shown before the alert started: what led to it
AFTER = timedelta(minutes=30)  # and after it ended: whether it settled

ctx = ui.context()
st.title("Incident")
params = st.query_params
alert_name = params.get("alert", "")
if not alert_name:
    periods = ui.query(ctx, "firing_periods", ctx.filters.since)
    if not periods:
        st.info("No alert fired in this range. An alert's notification links here with the "
                "alert, where to look and when it started.")
        st.stop()
    st.caption("Alerts that fired in this range, newest first: open one to see it.")
    ui.light_table(pd.DataFrame([{
        "alert": p.alert, "where": ", ".join(f"{k}={p.labels[k]}" for k in INCIDENT_LABELS
                                            if p.labels.get(k)) or "—",
        "started": f"{p.starts_at:%Y-%m-%d %H:%M}",
        "ended": f"{p.ends_at:%H:%M}" if p.ends_at else "firing",
        "summary": p.summary,
        "open": f"[open]({incident_url(p.labels, p.starts_at)})"} for p in periods]))
    st.stop()

if alert_name not in BY_NAME:
    st.error(f"alert: {alert_name!r} is not an alert of the catalogue (known: "
             f"{', '.join(sorted(BY_NAME))})")
    st.stop()
spec = BY_NAME[alert_name]
wanted = {k: params[k] for k in INCIDENT_LABELS if params.get(k)}
starts: datetime | None = None
if params.get("starts"):
    try:
        starts = datetime.strptime(params["starts"], STARTS_FORMAT).replace(
            tzinfo=ui.now().tzinfo)
    except ValueError:
        st.warning(f"starts: {params['starts']!r} is not a time like 2026-12-02T23:00Z; "
                   f"showing the latest time {alert_name} fired")
period = ui.query(ctx, "find_period", alert_name, wanted, starts)
if period is None:
    st.warning(f"{alert_name} has not fired with {wanted or 'these labels'}: showing where "
               f"to look anyway.")
provider = wanted.get("provider") or (period.labels.get("provider", "") if period else "")
now = ui.now().replace(second=0, microsecond=0)  # a cache key per minute
began = period.starts_at if period else starts or now - BEFORE
ended = period.ends_at if period else None

st.subheader(f"{alert_name}" + (f" · {provider}" if provider else "")
             + (f" · {wanted['slo']}" if wanted.get("slo") else ""))
status = "firing" if period and ended is None else "resolved" if period else "not found"
a, b, c, d = st.columns(4)
a.metric("Status", status)
b.metric("Severity", spec.severity)
c.metric("Owner", spec.team)
d.metric("Lasted" if ended else "Firing for",
         str((ended or now) - began).split(".")[0] if period else "—")
if period:
    st.markdown(f"**{period.summary}**")
st.markdown(f"{spec.impact}  \n[Runbook]({runbook_url(alert_name)}) · started "
            f"{began:%Y-%m-%d %H:%M} UTC" + (f", ended {ended:%H:%M} UTC" if ended else "")
            + (f" · [the SLO]({'slos?slo=' + wanted['slo']})" if wanted.get("slo") else ""))

window = timelines.Window(began - BEFORE, min(now, (ended or now) + AFTER))
scope = ctx.filters if not provider else Filters(
    window.start.date(), window.end.date(), provider)
frame = ui.query(ctx, "timeline", scope, window, provider)
bands = ui.query(ctx, "alert_bands", window, provider, now)
if frame.empty:
    st.caption("No provider calls around this alert.")
else:
    rates = timelines.failure_rates(frame)
    for panel in charts.timeline_panels(frame, rates, bands, window):
        st.altair_chart(panel, width="stretch")
    st.caption(charts.spike_summary(frame, bands, window))

if not provider:
    st.caption("This alert names no provider: the payments it touched are not singled out.")
    st.stop()
st.markdown(f"**Payments affected** at {provider} from {window.start:%H:%M} to "
            f"{window.end:%H:%M} UTC: outcome unknown, awaiting confirmation or failed")
affected = ui.query(ctx, "affected_payments", provider, window.start, window.end)
if affected.empty:
    st.caption("None: no payment went unknown, awaiting or failed in this window.")
    st.stop()
money_by_currency = affected.groupby("currency")["amount_minor"].sum()
st.caption("In all: " + ", ".join(queries.money(int(m), str(c))
                                  for c, m in money_by_currency.items())
           + f" across {len(affected):,} payments; still unresolved: "
           + f"{int(affected['now'].isin([timelines.UNKNOWN, timelines.AWAITING]).sum()):,}")
ui.light_table(affected.assign(
    payment=[f"[{p}](payments?payment={p})" for p in affected["payment"]],
    at=[f"{t:%H:%M:%S}" for t in affected["at"]],
    amount=[queries.money(m, c) for m, c in zip(affected["amount_minor"],
                                                affected["currency"], strict=True)])
    [["payment", "at", "became", "now", "amount"]])

st.markdown("**What was done about them**: each move out of unknown or awaiting confirmation")
done = ui.query(ctx, "resolutions", list(affected["payment"]), window.start)
if done.empty:
    st.caption("Nothing yet: the worker's resolver looks them up at the provider; a "
               "notification may also settle them.")
else:
    ui.light_table(done.assign(at=[f"{t:%H:%M:%S}" for t in done["at"]]))
