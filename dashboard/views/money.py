"""Money: the loop finance closes — payouts expected and arrived, open disputes with their
deadlines, the fees the providers took, and how old the open breaks are."""

import streamlit as st

from dashboard import ui

ctx = ui.context()
f = ctx.filters
st.title("Money")
payouts = ui.query(ctx, "payouts_view", f)
disputes = ui.query(ctx, "open_disputes", f)
arrived = int((payouts["bank"] != "in transit").sum()) if not payouts.empty else 0
left, middle, right, far = st.columns(4)
left.metric("Payouts", f"{len(payouts):,}")
middle.metric("Arrived at the bank", f"{arrived:,}")
right.metric("In transit", f"{len(payouts) - arrived:,}")
far.metric("Open disputes", f"{len(disputes):,}")

st.markdown("**Payouts: expected and arrived** (paid in the range)")
if payouts.empty:
    st.caption("No payout in this range: payouts come with the providers' settlement reports "
               "(`paysignal reconcile --dir`), arrivals with bank statements "
               "(`paysignal bank import`).")
else:
    ui.light_table(payouts)

st.markdown("**Open disputes**, evidence due soonest first")
if disputes.empty:
    st.caption("No open dispute.")
else:
    ui.light_table(disputes)

fees_col, aging_col = st.columns(2)
with fees_col:
    st.markdown("**Fees taken**, per provider and currency")
    fees = ui.query(ctx, "fees_by_provider", f)
    if fees.empty:
        st.caption("No fee booked in this range.")
    else:
        ui.light_table(fees)
with aging_col:
    st.markdown("**Open breaks by age**")
    aging = ui.query(ctx, "break_aging", f)
    if aging.empty:
        st.caption("No open break.")
    else:
        ui.light_table(aging)
