"""Payments: find one by id, merchant reference or Idempotency-Key, and see all of it."""

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import queries, ui

ctx = ui.context()
st.title("Payments")
if not ctx.has["payments"]:
    st.info("No payments yet — run `paysignal demo` (or send payments to the API).")
    st.stop()

search = st.text_input("Payment id, merchant reference or Idempotency-Key", key="payment_search",
                       value=st.query_params.get("payment", ""),
                       placeholder="pay_… or your order reference or the key you sent")
if not search.strip():
    st.caption("Exact match on any of the three. A link with `?payment=ID` opens a payment.")
    st.stop()
if len(search) > 255:
    st.error("search: at most 255 characters")
    st.stop()

found = ui.query(ctx, "find_payments", search)
if found.empty:
    st.warning(f"No payment has the id, merchant reference or Idempotency-Key {search.strip()!r}.")
    st.stop()
if len(found) > 1:
    st.dataframe(found[["id", "merchant", "state", "amount", "provider", "reference",
                        "created_at"]], hide_index=True, width="stretch")
chosen = st.selectbox("Payment", list(found["id"]), index=0) if len(found) > 1 \
    else found["id"].iloc[0]
if st.query_params.get("payment") != chosen:
    st.query_params["payment"] = chosen

p = ui.query(ctx, "payment", chosen)
st.subheader(f"{p['id']} — {p['state']}")
a, b, c, d = st.columns(4)
a.metric("Amount", queries.money(p["amount"], p["currency"]))
b.metric("Captured", queries.money(p["captured_amount"], p["currency"]))
c.metric("Refunded", queries.money(p["refunded_amount"], p["currency"]))
d.metric("Provider", p["provider"])
st.caption(f"merchant {p['merchant_id']} · reference {p['reference']} · provider reference "
           f"{p['provider_reference'] or '—'} · created {p['created_at']}"
           + (f" · declined: {p['decline_reason']}" if p["decline_reason"] else ""))


def table(title: str, rows: list[dict[str, Any]], empty: str) -> None:
    st.markdown(f"**{title}**")
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    else:
        st.caption(empty)


table("Audit trail", p["audit_trail"], "No transitions recorded.")
table("Provider attempts", p["provider_attempts"], "The provider was never called.")
table("Ledger entries", [{**e, "amount": queries.money(e["amount"], e["currency"])}
                         for e in p["ledger_entries"]], "No money has moved in the ledger.")
table("Outbox events", p["outbox_events"], "No events.")
table("Duplicate risk", p["duplicate_risk"],
      "No retry with this payment's key was replayed.")
