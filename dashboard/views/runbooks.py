"""Runbooks: what each alert means and what to do, served where every alert's link points
(`/runbooks?alert=<name>`)."""

import streamlit as st

from alerts.catalogue import BY_NAME, CATALOGUE
from dashboard import ui

ui.context()
st.title("Runbooks")
names = [spec.name for spec in CATALOGUE]
wanted = st.query_params.get("alert", "")
if wanted and wanted not in BY_NAME:
    st.warning(f"alert={wanted!r} is not an alert paysignal raises; the runbooks are listed "
               "below.")
name = st.selectbox("Alert", names, index=names.index(wanted) if wanted in BY_NAME else 0,
                    key="runbook_alert")
if st.query_params.get("alert") != name:
    st.query_params["alert"] = name
spec = BY_NAME[name]
st.caption(f"severity {spec.severity} · owner {spec.team} · fires when {spec.condition}")
st.markdown(spec.runbook.read_text(encoding="utf-8"))
