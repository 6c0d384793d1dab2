"""Reconciliation: the break queue finance works, and provider-day sign-off."""

import streamlit as st

from dashboard import actions, queries, ui
from dashboard.auth import Action
from engine.exports import csv_text, neutralised
from engine.settlement.breaks import BREAK_TRANSITIONS, show_break
from engine.settlement.kinds import BREAK_KINDS

ctx = ui.context()
f = ctx.filters
st.title("Reconciliation")
if not ctx.has["checkpoints"]:
    st.info("Nothing reconciled yet — `paysignal reconcile --dir FILES` imports provider "
            "settlement files (the worker does it with PAYSIGNAL_SETTLEMENT_DIR), or run "
            "`paysignal demo`.")
    st.stop()
may_work = ctx.user.may(Action.WORK_BREAKS)
may_sign = ctx.user.may(Action.SIGN_OFF)
if not (may_work and may_sign):
    st.caption("Working breaks and signing off need the finance role; you can read.")

left, right = st.columns(2)
status = left.selectbox("Status", ["open", "investigating", "resolved", "written_off", ""],
                        format_func=lambda s: s or "any status", key="queue_status")
kind = right.selectbox("Kind", ["", *BREAK_KINDS], format_func=lambda k: k or "any kind",
                       key="queue_kind")
queue = ui.query(ctx, "break_queue", f, status, kind)
st.markdown(f"**Break queue** — {len(queue):,} breaks")
if queue.empty:
    st.caption("No break matches these filters.")
else:
    shown = ["id", "provider", "settled_on", "kind", "provider_reference", "payment_id",
             "expected", "actual", "status", "owner", "age_hours"]
    # text from providers' files is shown (and downloaded) so no spreadsheet runs it
    safe = queue[shown].map(neutralised)
    st.dataframe(safe, hide_index=True, width="stretch")
    st.download_button("Download the queue (CSV)", csv_text(safe.to_dict("records"), shown),
                       file_name="breaks.csv", mime="text/csv", key="queue_download")

    ids = list(queue["id"])
    wanted = st.query_params.get("break", "")
    break_id = st.selectbox("Work on break", ids,
                            index=ids.index(wanted) if wanted in ids else 0, key="break_id")
    detail = show_break(ctx.read, break_id)
    expected = queries.money(detail["expected_minor"],
                             detail["expected_currency"] or detail["currency"])
    st.caption(f"{detail['kind']} · {detail['provider']} {detail['settled_on']} · "
               f"expected {expected} · "
               f"actual {queries.money(detail['actual_minor'], detail['currency'])} · "
               f"status {detail['status']} · owner {detail['owner'] or '—'}")
    if detail["audit"]:
        st.dataframe([{k: a[k] for k in ("at", "from_status", "to_status", "actor", "note")}
                      for a in detail["audit"]], hide_index=True, width="stretch")
    assign_col, move_col = st.columns(2)
    with assign_col.form("assign"):
        owner = st.text_input("Owner", key="assign_owner")
        note = st.text_input("Note", key="assign_note")
        if st.form_submit_button("Assign and investigate", disabled=not may_work,
                                 key="assign_submit"):
            ui.run_write(lambda: actions.assign_break(ctx.write, ctx.user, break_id, owner, note),
                         f"{break_id} assigned to {owner}")
    with move_col.form("move"):
        targets = sorted(BREAK_TRANSITIONS[detail["status"]])
        to = st.selectbox("Move to", targets or ["(final)"], disabled=not targets,
                          key="move_to")
        note = st.text_input("Note", key="move_note")
        if st.form_submit_button("Move", disabled=not (may_work and targets),
                                 key="move_submit"):
            ui.run_write(lambda: actions.move(ctx.write, ctx.user, break_id, to, note),
                         f"{break_id} moved to {to}")

st.markdown("**Sign off a provider-day**")
days = ui.query(ctx, "reconciliation_status", f)
pending = days[~days["signed_off"]] if not days.empty else days
if pending.empty:
    st.caption("Every reconciled day in this range is signed off.")
else:
    with st.form("sign_off"):
        options = [f"{p} {d}" for p, d in zip(pending["provider"], pending["day"], strict=True)]
        picked = st.selectbox("Provider and day", options, key="signoff_day")
        override = st.text_input("Override reason (needed while breaks are open)",
                                 key="signoff_override")
        if st.form_submit_button("Sign off", disabled=not may_sign, key="signoff_submit"):
            row = pending.iloc[options.index(picked)]
            ui.run_write(lambda: actions.sign_off_day(ctx.write, ctx.user, row["provider"],
                                                      row["day"], override),
                         f"{picked} signed off")
