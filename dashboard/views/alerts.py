"""Alerts: firing and recent alerts, the delivery log, silences, and rollout toggles."""

import streamlit as st

from dashboard import actions, ui
from dashboard.auth import Action
from engine.domain.method_types import MethodType
from engine.providers import provider_names

ctx = ui.context()
f = ctx.filters
st.title("Alerts")
may_silence = ctx.user.may(Action.SILENCE_ALERTS)
may_toggle = ctx.user.may(Action.SET_TOGGLES)

recent = ui.query(ctx, "alerts", None, f.since, f)
firing = recent[recent["status"] == "firing"]
a, b = st.columns(2)
a.metric("Firing", len(firing))
b.metric("Resolved in range", int((recent["status"] == "resolved").sum()))
if recent.empty:
    st.info("No alerts in this range — the worker evaluates alerts every minute; or run "
            "`paysignal alerts evaluate`.")
else:
    st.dataframe(recent.drop(columns=["fingerprint"]), hide_index=True, width="stretch",
                 column_config={"runbook": st.column_config.LinkColumn("runbook"),
                                "incident": st.column_config.LinkColumn(
                                    "incident", display_text="open")})

st.subheader("Delivery log")
log = ui.query(ctx, "deliveries")
if log.empty:
    st.caption("No notification has been sent yet.")
else:
    st.dataframe(log, hide_index=True, width="stretch")

st.subheader("Silences")
now = ui.now()
current = ui.query(ctx, "silences")
current = current.assign(active=(current["starts_at"] <= now) & (now < current["ends_at"]))
if current.empty:
    st.caption("No silences.")
else:
    st.dataframe(current, hide_index=True, width="stretch")
if not may_silence:
    st.caption("Silencing alerts needs the engineering role; you can read.")
with st.form("silence"):
    matchers = st.text_input("Matchers", key="silence_matchers",
                             placeholder='alertname="OutboxBacklog", provider="paypal"')
    hours = st.number_input("Hours", min_value=0.25, max_value=336.0, value=2.0, step=0.25,
                            key="silence_hours")
    comment = st.text_input("Why", key="silence_comment")
    if st.form_submit_button("Silence", disabled=not may_silence, key="silence_submit"):
        ui.run_write(lambda: actions.silence(ctx.write, ctx.user, matchers.split(","), hours,
                                             comment), "silence created")
active = list(current[current["active"]]["id"]) if not current.empty else []
if active:
    with st.form("expire"):
        silence_id = st.selectbox("Active silence", active, key="expire_id")
        if st.form_submit_button("Expire now", disabled=not may_silence,
                                 key="expire_submit"):
            ui.run_write(lambda: actions.expire(ctx.write, ctx.user, silence_id),
                         f"{silence_id} expired")

st.subheader("Rollout toggles")
toggles, audit, policy = ui.query(ctx, "toggles")
st.caption("Idempotency enforcement per provider and payment-method type (* for every type), "
           "optionally for one merchant; the most specific toggle wins, and providers not "
           "listed enforce.")
if toggles:
    st.dataframe(toggles, hide_index=True, width="stretch")
for note in policy[:3]:
    st.warning(f"Error-budget policy for {note['provider']} ({note['at'][:16]} UTC): "
               f"{note['note']}")
if not may_toggle:
    st.caption("Changing toggles needs the engineering role; you can read.")
with st.form("toggle"):
    provider = st.selectbox("Provider", provider_names(), key="toggle_provider")
    method_type = st.selectbox("Payment-method type", ["*", *(t.value for t in MethodType)],
                               key="toggle_method_type")
    mode = st.selectbox("Mode", ["enforce", "shadow", "off"], key="toggle_mode")
    reason = st.text_input("Reason", key="toggle_reason")
    if st.form_submit_button("Change toggle", disabled=not may_toggle, key="toggle_submit"):
        scope = f"{provider} / {method_type}"
        ui.run_write(lambda: actions.set_toggle(ctx.write, ctx.user, provider, mode, reason,
                                                method_type=method_type),
                     lambda change: f"{scope}: {change['from']} → {mode}" if change["changed"]
                     else f"{scope} is already {mode}: nothing changed")
if audit:
    st.dataframe(audit, hide_index=True, width="stretch")
