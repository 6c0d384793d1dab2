"""The Prometheus SLI backend: the same SLIs through Prometheus's HTTP query API, for
deployments that run Prometheus. A counter's events in a window are its value at the end minus
its value at the start (0 for a series born inside the window), summed over the matching series:
exact, unlike `increase()`, which extrapolates to the window's edges. A process restart inside
the window resets its counters and undercounts that window. The reconciliation gauges use their
average level over the window."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from engine.exceptions import PaysignalError
from slo.maths import Counts
from slo.rules import is_gauge, selector
from slo.spec import SLO, MetricQuery

_MINUTE = timedelta(minutes=1)


class PrometheusQueryError(PaysignalError):
    """Prometheus refused or failed a query; the message carries its error."""


class PrometheusBackend:
    name = "prometheus"

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url, self.timeout_s = url.rstrip("/"), timeout_s

    def prepare(self, slos: list[SLO], at: datetime) -> int:
        return 0  # Prometheus aggregates as it scrapes: nothing to read

    def _scalar(self, query: str, at: datetime) -> float:
        try:
            response = httpx.get(f"{self.url}/api/v1/query", timeout=self.timeout_s,
                                 params={"query": query, "time": at.timestamp()})
        except httpx.HTTPError as exc:
            raise PrometheusQueryError(f"prometheus at {self.url}: {exc}") from None
        body = response.json() if response.headers.get("content-type", "").startswith(
            "application/json") else {}
        if response.status_code != 200 or body.get("status") != "success":
            reason = body.get("error") or response.text[:200]
            raise PrometheusQueryError(f"prometheus at {self.url}: {reason}")
        result = body["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    def _amount(self, q: MetricQuery, slo: SLO, seconds: int, at: datetime) -> float:
        if seconds <= 0:
            return 0.0
        if is_gauge(slo):
            return self._scalar(f"sum(avg_over_time({selector(q)}[{seconds}s]))", at)
        series = selector(q)
        return self._scalar(f"sum({series} - (({series} offset {seconds}s) or ({series} * 0)))",
                            at)

    def counts(self, slo: SLO, start: datetime, end: datetime) -> Counts:
        seconds = int((end - start).total_seconds())
        total = round(self._amount(slo.total, slo, seconds, end))
        if slo.good is not None:
            good = round(self._amount(slo.good, slo, seconds, end))
        else:
            assert slo.bad is not None
            good = total - round(self._amount(slo.bad, slo, seconds, end))
        return Counts(min(good, total), total)

    def minute_counts(self, slo: SLO, start: datetime, end: datetime) -> list[Counts]:
        out = []
        minute = start
        while minute < end:
            nxt = min(end, minute.replace(second=0, microsecond=0) + _MINUTE)
            out.append(self.counts(slo, minute, nxt))
            minute = nxt
        return out

