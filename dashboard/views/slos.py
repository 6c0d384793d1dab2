"""SLOs: per SLO the budget burn-down, burn rates per window, the policy, and the report."""

from datetime import timedelta

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import queries, ui

ctx = ui.context()
f = ctx.filters
st.title("SLOs")
history = ui.query(ctx, "slo_history", f.since)
latest = queries.latest_slos(history)
if latest.empty:
    st.info("No SLO evaluations in this range — the worker evaluates every minute; or run "
            "`paysignal slo evaluate` (and `paysignal demo` for traffic to evaluate).")
    st.stop()

names = list(latest["slo"])
labels = dict(zip(latest["slo"], latest["display_name"], strict=True))
wanted = st.query_params.get("slo", "")
# opens on the SLO that needs attention (firing, else the least budget left)
first = wanted if wanted in names else queries.most_urgent_slo(latest)
name = st.selectbox("SLO", names, index=names.index(first),
                    format_func=lambda n: labels[n], key="slo_name")
if st.query_params.get("slo") != name:
    st.query_params["slo"] = name
row = latest[latest["slo"] == name].iloc[0]
mine = history[history["slo"] == name]

a, b, c, d = st.columns(4)
a.metric("Attained", "no data" if pd.isna(row["sli"]) else f"{row['sli']:.3%}",
         help=f"objective {row['objective']:.3%}"
         + (" · no events in the window" if pd.isna(row["sli"]) else ""))
b.metric("Error budget left", f"{row['budget_remaining']:.1%}")
c.metric("Events in window", f"{row['events']:,}", help=f"window {row['window']}")
exhaust = row["exhaustion_in_seconds"]
d.metric("Budget exhausted in", "—" if pd.isna(exhaust)
         else str(timedelta(seconds=int(exhaust))))
st.caption(f"owner {row['owner']} · last evaluated {row['at']:%Y-%m-%d %H:%M} UTC")

st.markdown("**Budget burn-down**")
st.altair_chart(alt.Chart(mine.assign(left=100 * mine["budget_remaining"])).mark_line().encode(
    x=alt.X("at:T", title=None), y=alt.Y("left:Q", title="budget left %"),
    tooltip=["at:T", "left:Q"]), width="stretch")

st.markdown("**Burn rates per window** (latest evaluation)")
st.dataframe(pd.DataFrame([{"window": w, "burn rate": r}
                           for w, r in row["burn_rates"].items()]),
             hide_index=True, width="stretch")
st.markdown("**Alert conditions holding** (multi-window burn rates)")
if row["conditions"]:
    st.dataframe(pd.DataFrame([{
        "severity": c["severity"], "tier": c["tier"],
        "long window": f"{c['windows']['long']} at {c['burn_rates']['long']:.1f}×",
        "short window": f"{c['windows']['short']} at {c['burn_rates']['short']:.1f}×",
        "threshold": f"{c['factor']:g}×",
        "state": f"inhibited by {c['inhibited_by']}" if c["inhibited_by"] else "firing",
    } for c in row["conditions"]]), hide_index=True, width="stretch", key="slo_conditions")
else:
    st.caption("None: every burn window is below its threshold.")

st.markdown("**Error-budget policy**")
for line in row["policy"] or ["Within budget: no policy action."]:
    st.markdown(f"- {line}")


@st.cache_data(ttl=300, show_spinner="Building the SLO report…")
def report(url: str, days: int) -> str:
    from slo.backends import make_backend
    from slo.report import build_report, render_markdown
    from slo.spec import load_definitions

    engine = ui.engine_for(url)
    period = timedelta(days=days)
    built = build_report(engine, make_backend("database", engine=engine), load_definitions(),
                         period)
    return render_markdown(built, period)


with st.expander("Latest SLO review report (last 7 days)"):
    # The report rolls up per-minute counts first, so it uses the writing connection.
    st.markdown(report(ctx.write_url, 7))
