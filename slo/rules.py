"""Prometheus recording and alerting rules for every SLO: the same SLIs and multi-window
burn-rate conditions that `paysignal slo evaluate` computes, for deployments with Prometheus."""

from __future__ import annotations

import yaml

from slo.links import runbook_url
from slo.maths import _duration_label
from slo.spec import SLO, MetricQuery


def is_gauge(slo: SLO) -> bool:
    return not (slo.total.metric.endswith("_total") or slo.total.series)


def selector(q: MetricQuery, extra: str = "") -> str:
    matchers = [m.promql() for m in q.matchers]
    if q.le is not None:
        matchers.append(f'le="{q.le}"')
    return f"{q.metric}{{{', '.join(matchers + ([extra] if extra else []))}}}"


def _increase(q: MetricQuery, window: str, gauge: bool) -> str:
    if gauge:  # gauges of amounts or counts: their average level over the window
        return f"sum(avg_over_time({selector(q)}[{window}]))"
    return f"sum(increase({selector(q)}[{window}]))"


def error_ratio_expr(slo: SLO, window: str) -> str:
    # `or vector(0)`: with no good (or no bad) series at all, as in a total outage, the sum is
    # empty rather than 0, and an empty ratio would never page.
    gauge = is_gauge(slo)
    total = _increase(slo.total, window, gauge)
    if slo.bad is not None:
        return f"({_increase(slo.bad, window, gauge)} or vector(0)) / ({total})"
    assert slo.good is not None
    return f"1 - (({_increase(slo.good, window, gauge)} or vector(0)) / ({total}))"


def record_name(slo: SLO, window: str) -> str:
    return f"slo:error_ratio:{window}:{slo.name.replace('-', '_')}"


def rules_document(slos: list[SLO]) -> dict[str, object]:
    groups = []
    for slo in slos:
        windows = sorted({w.long for w in slo.burn_windows} | {w.short for w in slo.burn_windows})
        labels = {"slo": slo.name, "team": slo.owner}
        if slo.provider:
            labels["provider"] = slo.provider
        records = [{"record": record_name(slo, _duration_label(w)),
                    "expr": error_ratio_expr(slo, _duration_label(w)), "labels": labels}
                   for w in windows]
        alerts = []
        for w in slo.burn_windows:
            long_name, short_name = _duration_label(w.long), _duration_label(w.short)
            budget = 1 - slo.target
            minimum = (f" and on() ({_increase(slo.total, long_name, is_gauge(slo))}) >= "
                       f"{slo.min_events}") if slo.min_events else ""
            alerts.append({
                "alert": f"SLOBurnRate{w.severity.capitalize()}",
                "expr": (f"{record_name(slo, long_name)} > ({w.factor} * {budget:.6g}) and "
                         f"{record_name(slo, short_name)} > ({w.factor} * {budget:.6g})"
                         f"{minimum}"),
                "labels": {**labels, "severity": w.severity, "burn_tier": w.tier},
                "annotations": {
                    "summary": (f"{slo.display_name}: burning the {slo.window.text} error budget "
                                f"at over {w.factor}x over {long_name} and {short_name}"),
                    "runbook_url": runbook_url(f"SLOBurnRate{w.severity.capitalize()}"),
                    "objective": f"{slo.target}",
                }})
        groups.append({"name": f"slo-{slo.name}", "interval": "1m",
                       "rules": records + alerts})
    return {"groups": groups}


def render_rules(slos: list[SLO]) -> str:
    return yaml.safe_dump(rules_document(slos), sort_keys=False, width=120)


