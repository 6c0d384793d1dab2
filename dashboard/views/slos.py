"""SLOs: every SLO at a glance (objective, attained, error budget left as a bar, burn rates,
firing), most urgent first; below, one SLO over its own window — error ratio and budget
burn-down — with its alert conditions, policy and the review report."""

from datetime import timedelta

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts, queries, ui

ctx = ui.context()
f = ctx.filters
st.title("SLOs")
history = ui.query(ctx, "slo_history", f.since)
latest = queries.latest_slos(history)
if latest.empty:
    st.info("No SLO evaluations in this range — the worker evaluates every minute; or run "
            "`paysignal slo evaluate` (and `paysignal demo` for traffic to evaluate).")
    st.stop()

BURN_WINDOWS = ("5m", "1h", "6h", "1d")  # the short and long windows of the alert tiers


rows = queries.by_urgency(latest)
names = [str(r["slo"]) for r in rows]
labels = {str(r["slo"]): str(r["display_name"]) for r in rows}

st.markdown("**At a glance**, most urgent first (firing pages, then tickets, then the least "
            "budget left)")
WIDTHS = [3, 1, 1, 2, 2.6, 1.2]
head = st.columns(WIDTHS)
for column, title in zip(head, ("SLO", "objective", "attained", "error budget left",
                                "burn rate now", "firing"), strict=True):
    column.caption(title)
for r in rows:
    name, budget = str(r["slo"]), float(r["budget_remaining"])
    firing = queries.firing_conditions(r["conditions"])
    cells = st.columns(WIDTHS, vertical_alignment="center")
    cells[0].markdown(f"[{r['display_name']}](slos?slo={name})  \n"
                      f"<small>{r['owner']} · {r['window']}</small>", unsafe_allow_html=True)
    cells[1].markdown(f"{r['objective']:.2%}")
    cells[2].markdown("no data" if pd.isna(r["sli"]) else f"{r['sli']:.3%}")
    cells[3].progress(min(max(budget, 0.0), 1.0), text=f"{budget:.1%}")
    rates = r["burn_rates"]
    cells[4].markdown(" · ".join(f"{w} **{rates[w]:.1f}×**" if rates.get(w, 0) >= 1
                                 else f"{w} {rates.get(w, 0):.1f}×"
                                 for w in BURN_WINDOWS if w in rates) or "—")
    cells[5].markdown(" ".join(f":red-badge[{c}]" if c.startswith("page")
                               else f":orange-badge[{c}]" for c in firing) or "—")

st.divider()
wanted = st.query_params.get("slo", "")
first = wanted if wanted in names else names[0]
name = st.selectbox("SLO", names, index=names.index(first),
                    format_func=lambda n: labels[n], key="slo_name")
if st.query_params.get("slo") != name:
    st.query_params["slo"] = name
row = latest[latest["slo"] == name].iloc[0]

a, b, c, d = st.columns(4)
a.metric("Attained", "no data" if pd.isna(row["sli"]) else f"{row['sli']:.3%}",
         help=f"objective {row['objective']:.3%}"
         + (" · no events in the window" if pd.isna(row["sli"]) else ""))
b.metric("Error budget left", f"{row['budget_remaining']:.1%}")
c.metric("Events in window", f"{row['events']:,}", help=f"window {row['window']}")
exhaust = row["exhaustion_in_seconds"]
d.metric("Budget exhausted in", "—" if pd.isna(exhaust)
         else str(timedelta(seconds=int(exhaust))))
st.caption(f"owner {row['owner']} · window {row['window']} from "
           f"{row['window_start']:%Y-%m-%d %H:%M} · last evaluated {row['at']:%Y-%m-%d %H:%M} UTC")

over = ui.query(ctx, "slo_window", name, row["window_start"].to_pydatetime(),
                row["at"].to_pydatetime() + timedelta(minutes=1), float(row["objective"]))
if over.empty:
    mine = history[history["slo"] == name]
    st.markdown(f"**Error budget left** at each evaluation in the range (this SLO keeps no "
                f"per-minute counts; its {row['window']} window is evaluated whole)")
    st.altair_chart(alt.Chart(mine.assign(left=100 * mine["budget_remaining"])).mark_line()
                    .encode(x=alt.X("at:T", title=None, scale=alt.Scale(type="utc")),
                            y=alt.Y("left:Q", title="budget left %"),
                            tooltip=["at:T", "left:Q"]).properties(height=180),
                    width="stretch")
else:
    since = over["at"].iloc[0]
    x = charts.time_axis(since.to_pydatetime(), row["at"].to_pydatetime() + timedelta(minutes=1))
    st.markdown(f"**Over its {row['window']} window** (data from {since:%Y-%m-%d %H:%M} UTC)")
    left, right = st.columns(2)
    allowed = 1 - float(row["objective"])
    ratio = over.assign(percent=100 * over["error_ratio"])
    left.altair_chart(alt.layer(
        alt.Chart(ratio).mark_area(opacity=0.6, color="#d1495b").encode(
            x=x, y=alt.Y("percent:Q", title="error ratio %"),
            tooltip=["at:T", "percent:Q", "bad:Q", "total:Q"]),
        alt.Chart(pd.DataFrame({"allowed": [100 * allowed]})).mark_rule(
            strokeDash=[4, 4]).encode(y="allowed:Q"),
    ).properties(title="Error ratio (dashed: what the objective allows)", height=180),
        width="stretch")
    right.altair_chart(alt.Chart(over.assign(left=100 * over["budget_left"])).mark_area(
        opacity=0.6, color="#4c9a5f", line=True).encode(
        x=x, y=alt.Y("left:Q", title="budget left %"),
        tooltip=["at:T", "left:Q"]).properties(title="Error budget burn-down", height=180),
        width="stretch")

st.markdown("**Burn rates per window** (latest evaluation): "
            + " · ".join(f"{w} {r:.2f}×" for w, r in row["burn_rates"].items()))
st.markdown("**Alert conditions holding** (multi-window burn rates)")
if row["conditions"]:
    ui.light_table(pd.DataFrame([{
        "severity": c["severity"], "tier": c["tier"],
        "long window": f"{c['windows']['long']} at {c['burn_rates']['long']:.1f}×",
        "short window": f"{c['windows']['short']} at {c['burn_rates']['short']:.1f}×",
        "threshold": f"{c['factor']:g}×",
        "state": f"inhibited by {c['inhibited_by']}" if c["inhibited_by"] else "firing",
    } for c in row["conditions"]]))
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


# Built on request only: it rolls up every SLO's events of the week first (tens of seconds on
# a million payments), and uses the writing connection for that.
if st.toggle("Show the SLO review report of the last 7 days", key="slo_report"):
    st.markdown(report(ctx.write_url, 7))
