"""The dashboard's time-series charts (Altair, which Streamlit draws natively): panels stacked
on one time axis (the same domain, the same plot width: axes of fixed width, legends above),
alert firing periods drawn as bands behind every panel."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import altair as alt
import pandas as pd

from dashboard.timelines import CALL_SERIES, FAILING, RISK_SERIES, Window

OUTCOME_COLOURS = {"succeeded": "#4c9a5f", "submitted": "#8fb8de", "declined": "#c9a227",
                   "error": "#d1495b", "timed out": "#7b2d8b"}
SEVERITY_COLOURS = {"page": "#d1495b", "ticket": "#edae49"}
PANEL_HEIGHT = 140
Y_AXIS_WIDTH = 56  # every panel's y axis takes the same room, so the time axes line up


def time_axis(start: datetime, end: datetime, field: str = "at") -> alt.X:
    """A time axis in UTC (never the reader's browser zone: every caption says UTC), from
    `start` to `end`, labelled by hour and minute, with the day once the span is over a day."""
    multi_day = end - start > timedelta(hours=24)
    return alt.X(f"{field}:T", title=None,
                 scale=alt.Scale(type="utc", domain=[start.isoformat(), end.isoformat()]),
                 axis=alt.Axis(format="%b %d %H:%M" if multi_day else "%H:%M", labelAngle=0,
                               grid=True, labelOverlap=True))


def _axis(window: Window) -> alt.X:
    return time_axis(window.start, window.end)


def _y(field: str, title: str) -> alt.Y:
    return alt.Y(field, title=title, axis=alt.Axis(minExtent=Y_AXIS_WIDTH,
                                                   maxExtent=Y_AXIS_WIDTH, tickMinStep=1))


def _bands(bands: pd.DataFrame) -> Any:
    data = bands.assign(start=bands["start"].map(lambda t: t.isoformat()),
                        end=bands["end"].map(lambda t: t.isoformat()))
    return alt.Chart(data).mark_rect(opacity=0.2).encode(
        x=alt.X("start:T", scale=alt.Scale(type="utc")), x2="end:T",
        fill=alt.Fill("severity:N", title="alert firing",
                      scale=alt.Scale(domain=list(SEVERITY_COLOURS),
                                      range=list(SEVERITY_COLOURS.values()))),
        tooltip=[alt.Tooltip("alert:N"), alt.Tooltip("provider:N"),
                 alt.Tooltip("start:T", format="%H:%M"), alt.Tooltip("end:T", format="%H:%M"),
                 alt.Tooltip("summary:N")])


def _panel(layer: alt.Chart, bands: pd.DataFrame, title: str) -> Any:
    chart = layer if bands.empty else alt.layer(_bands(bands), layer)
    # the height is the plot's own (Streamlit's default autosize would squeeze the plot to fit
    # title and legend into it); legends above, so every plot gets the same width
    return chart.properties(
        title=alt.TitleParams(title, anchor="start", fontSize=13), height=PANEL_HEIGHT,
        autosize=alt.AutoSizeParams(type="fit-x", contains="padding")).configure_legend(
        orient="top", direction="horizontal", title=None, labelLimit=200)


def _utc(at: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(at)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _zero_filled(counts: pd.DataFrame, window: Window) -> pd.DataFrame:
    """Counts per bucket and series (providers added up), with the buckets that had none as
    zeros, so a line drops to zero instead of bridging the gap."""
    if counts.empty:
        return counts
    # in one zone: a time read from PostgreSQL says Etc/UTC, one from the clock UTC, and
    # pandas refuses a range between "two" zones
    buckets = pd.date_range(_utc(window.start).floor(f"{window.minutes}min"), _utc(window.end),
                            freq=f"{window.minutes}min")
    summed = counts.groupby(["at", "series"])["value"].sum().unstack("series")
    filled = summed.reindex(buckets, fill_value=0).fillna(0).astype("int64")
    filled.index.name = "at"
    return filled.reset_index().melt(id_vars="at", var_name="series", value_name="value")


def timeline_panels(frame: pd.DataFrame, rates: pd.DataFrame, bands: pd.DataFrame,
                    window: Window) -> list[Any]:
    """Four panels over one time axis: authorizations by outcome, error and time-out rate per
    provider, unknown outcomes opened and resolved, and duplicate-request defences."""
    bucket = f"per {window.minutes} min" if window.minutes > 1 else "per minute"
    calls = frame[frame["series"].isin(set(CALL_SERIES.values()))]
    moves = frame[frame["series"].str.startswith("unknown ")]
    risk = _zero_filled(frame[frame["series"].isin(set(RISK_SERIES.values()))], window)
    x = _axis(window)
    return [
        _panel(alt.Chart(calls).mark_bar().encode(
            x=x, y=_y("sum(value):Q", "calls"),
            color=alt.Color("series:N", title="outcome",
                            scale=alt.Scale(domain=list(OUTCOME_COLOURS),
                                            range=list(OUTCOME_COLOURS.values()))),
            tooltip=["at:T", "provider:N", "series:N", "value:Q"]),
            bands, f"Authorizations {bucket}, by outcome"),
        _panel(alt.Chart(rates).mark_line(point=True).encode(
            x=x, y=_y("percent:Q", "% of calls"),
            color=alt.Color("provider:N"), strokeDash=alt.StrokeDash("series:N"),
            tooltip=["at:T", "provider:N", "series:N", "percent:Q"]),
            bands, f"Provider errors and time-outs, % of authorizations {bucket}"),
        _panel(alt.Chart(moves).mark_bar().encode(
            x=x, y=_y("sum(value):Q", "payments"),
            color=alt.Color("series:N",
                            scale=alt.Scale(domain=["unknown opened", "unknown resolved"],
                                            range=["#7b2d8b", "#4c9a5f"])),
            tooltip=["at:T", "provider:N", "series:N", "value:Q"]),
            bands, f"Unknown outcomes opened and resolved {bucket}"),
        _panel(alt.Chart(risk).mark_line().encode(
            x=x, y=_y("value:Q", "requests"), color=alt.Color("series:N"),
            tooltip=["at:T", "series:N", "value:Q"]),
            bands, f"Idempotent replays, key conflicts, in-flight rejections {bucket}"),
    ]


def spike_summary(frame: pd.DataFrame, bands: pd.DataFrame, window: Window) -> str:
    """What the failure panel shows, in a sentence: the provider whose authorizations failed
    most, the stretch of time it lasted (failing buckets less than half an hour apart), its
    worst bucket, and the alerts firing during that stretch."""
    failed = frame[frame["series"].isin(FAILING)]
    if failed.empty:
        return "No provider errors or time-outs in this range."
    calls = frame[frame["series"].isin(set(CALL_SERIES.values()))]
    provider = str(failed.groupby("provider")["value"].sum().idxmax())
    mine = failed[failed["provider"] == provider].groupby("at")["value"].sum().sort_index()
    totals = calls[calls["provider"] == provider].groupby("at")["value"].sum()
    step = pd.Timedelta(minutes=window.minutes)
    gap = pd.Timedelta(minutes=30)
    stretches: list[list[pd.Timestamp]] = []
    for at in mine.index:
        if stretches and at - stretches[-1][-1] <= max(gap, step):
            stretches[-1].append(at)
        else:
            stretches.append([at])
    worst = max(stretches, key=lambda s: (int(mine[s].sum()), s[0]))
    start, end = pd.Timestamp(worst[0]), pd.Timestamp(worst[-1]) + step
    share = (100 * mine[worst] / totals.reindex(worst).clip(lower=1))
    peak = pd.Timestamp(str(share.idxmax()))
    first, last = start.to_pydatetime(), end.to_pydatetime()
    during = sorted({str(b["alert"]) for b in bands.to_dict("records")
                     if b["provider"] in ("", provider) and b["start"] < last
                     and b["end"] > first})
    firing = f"; alerts firing then: {', '.join(during)}" if during else \
        "; no alert fired then"
    return (f"Errors and time-outs: {provider}, {int(mine[worst].sum())} failed "
            f"authorizations from {start:%H:%M} to {end:%H:%M} UTC, at worst "
            f"{share.max():.0f} % at {peak:%H:%M}{firing}.")
