"""Prometheus adapter: registers the catalogue's metrics and feeds them from engine events."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from engine.domain.operations import Operation
from engine.observability.observer import EngineObserver
from engine.observability.signals import CATALOGUE, LATENCY_BUCKETS, MetricSpec
from engine.payments.toggles import ANY, DEFAULT_MODE, Mode, current_modes
from engine.providers.base import OutcomeKind
from engine.read_models.health import (
    notification_states,
    oldest_pending_outbox_event,
    stale_unknown_outcomes,
)
from engine.read_models.ledger import imbalances
from engine.read_models.sli_events import (
    ReconciliationFigure,
    break_ages,
    reconciliation_amounts,
    reconciliation_lines,
)
from engine.storage.repository import utc

# Gauges set by events (the others are read from the tables at scrape time).
EVENT_GAUGES = ("paysignal_job_last_success_timestamp_seconds",)


def current_trace_id() -> str | None:
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class Metrics:
    """The catalogue's event metrics in one registry (one per process, or per test)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._m: dict[str, Any] = {}
        for spec in CATALOGUE:
            if spec.kind == "counter":
                self._m[spec.name] = Counter(spec.name.removesuffix("_total"), spec.help,
                                             spec.labels, registry=self.registry)
            elif spec.kind == "histogram":
                self._m[spec.name] = Histogram(spec.name, spec.help, spec.labels,
                                               buckets=spec.buckets or LATENCY_BUCKETS,
                                               registry=self.registry)
            elif spec.name in EVENT_GAUGES:
                self._m[spec.name] = Gauge(spec.name, spec.help, spec.labels,
                                           registry=self.registry)

    def __getitem__(self, name: str) -> Any:
        return self._m[name]

    def observe(self, name: str, value: float, **labels: str) -> None:
        trace_id = current_trace_id()
        exemplar = {"trace_id": trace_id} if trace_id else None
        self._m[name].labels(**labels).observe(value, exemplar=exemplar)

    def inc(self, name: str, **labels: str) -> None:
        metric = self._m[name]
        (metric.labels(**labels) if labels else metric).inc()

    def start_provider_series(self, providers: list[str]) -> None:
        """Create every provider call series at zero before the first call: Prometheus's
        increase() cannot count a series' first value, so a burst of failures right after a
        start (an incident during a deploy, say) would otherwise be missed by the SLO rules."""
        calls = self._m["paysignal_provider_call_duration_seconds"]
        for provider in providers:
            for operation in Operation:
                for outcome in (OutcomeKind.SUCCEEDED, OutcomeKind.DECLINED,
                                OutcomeKind.RETRYABLE, OutcomeKind.UNKNOWN):
                    calls.labels(provider=provider, operation=operation.value,
                                 outcome=outcome.value)

    def watch_tables(self, engine: Engine, providers: list[str] | None = None,
                     ttl_s: float = 15.0) -> None:
        """Gauges read from the tables of record at scrape time, at most once per ttl_s."""
        self.registry.register(_TableGauges(engine, providers or [], ttl_s))


class PrometheusObserver(EngineObserver):
    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def idempotency(self, outcome: str) -> None:
        self.m.inc("paysignal_idempotency_requests_total", outcome=outcome)

    def transition(self, from_state: str, to_state: str, provider: str) -> None:
        self.m.inc("paysignal_payment_transitions_total", from_state=from_state,
                   to_state=to_state, provider=provider)

    def provider_call(self, provider: str, operation: str, outcome: str, duration_s: float,
                      attempt: int) -> None:
        self.m.observe("paysignal_provider_call_duration_seconds", duration_s,
                       provider=provider, operation=operation, outcome=outcome)

    def retry(self, provider: str, operation: str) -> None:
        self.m.inc("paysignal_provider_retries_total", provider=provider, operation=operation)

    def retry_budget_exhausted(self, provider: str) -> None:
        self.m.inc("paysignal_retry_budget_exhausted_total", provider=provider)

    def unknown_outcome(self, provider: str) -> None:
        self.m.inc("paysignal_unknown_outcomes_total", provider=provider)

    def unknown_resolved(self, provider: str, result: str, unknown_for_s: float) -> None:
        self.m.inc("paysignal_unknown_outcomes_resolved_total", provider=provider, result=result)
        self.m.observe("paysignal_unknown_outcome_resolution_seconds", unknown_for_s,
                       provider=provider)

    def shadow_duplicate(self, provider: str, method_type: str, would_be: str) -> None:
        self.m.inc("paysignal_idempotency_shadow_detections_total", provider=provider,
                   method_type=method_type, would_be=would_be)

    def webhook(self, provider: str, result: str) -> None:
        self.m.inc("paysignal_webhook_events_total", provider=provider, result=result)

    def webhook_lag(self, provider: str, seconds: float) -> None:
        self.m.observe("paysignal_webhook_processing_lag_seconds", seconds, provider=provider)


def _gauge(spec: MetricSpec) -> GaugeMetricFamily:
    return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


RECONCILIATION_GAUGE_WINDOW = timedelta(days=35)


class _TableGauges(Collector):
    """Gauges read from the tables of record, at most once per `ttl_s` however often anyone
    scrapes."""

    def __init__(self, engine: Engine, providers: list[str], ttl_s: float) -> None:
        self.engine, self.providers = engine, providers
        self.ttl_s = ttl_s
        self._cached: tuple[float, list[Any]] | None = None
        self._lock = threading.Lock()
        self.reads = 0

    def describe(self) -> list[Any]:
        return []  # collected lazily: never query the database at registration

    def collect(self) -> Any:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.ttl_s:
                self._cached = (now, list(self._read()))
                self.reads += 1
            return list(self._cached[1])

    def _read(self) -> Any:
        from engine.observability.signals import BY_NAME

        now = datetime.now(UTC)
        open_ = _gauge(BY_NAME["paysignal_unknown_outcomes_open"])
        oldest = _gauge(BY_NAME["paysignal_unknown_outcome_oldest_age_seconds"])
        pending = _gauge(BY_NAME["paysignal_outbox_pending_events"])
        pending_age = _gauge(BY_NAME["paysignal_outbox_oldest_pending_age_seconds"])
        imbalance = _gauge(BY_NAME["paysignal_ledger_imbalance_minor"])
        for stale in stale_unknown_outcomes(self.engine):
            open_.add_metric([stale.provider], stale.count)
            oldest.add_metric([stale.provider], (now - stale.oldest_since).total_seconds())
        count, first = oldest_pending_outbox_event(self.engine)
        pending.add_metric([], count)
        pending_age.add_metric([], (now - utc(first)).total_seconds() if first else 0.0)
        totals: dict[str, int] = {}
        for i in imbalances(self.engine):
            totals[i.currency] = totals.get(i.currency, 0) + abs(i.debits_minus_credits)
        for currency, value in totals.items():
            imbalance.add_metric([currency], value)
        modes = _gauge(BY_NAME["paysignal_idempotency_enforcement_mode"])
        current = {(p, ANY, ANY): DEFAULT_MODE.value for p in self.providers}
        current.update({(t["provider"], t["method_type"], t["merchant_id"]): t["mode"]
                        for t in current_modes(self.engine)})
        for (provider, method_type, merchant), mode in sorted(current.items()):
            for candidate in Mode:
                modes.add_metric([provider, method_type, merchant, candidate.value],
                                 1.0 if candidate.value == mode else 0.0)
        lines = _gauge(BY_NAME["paysignal_reconciliation_lines"])
        amounts = _gauge(BY_NAME["paysignal_reconciliation_amount_minor"])
        breaks = _gauge(BY_NAME["paysignal_reconciliation_breaks"])
        since = now - RECONCILIATION_GAUGE_WINDOW
        for labels, total in _summed(reconciliation_lines(self.engine, since)):
            lines.add_metric(list(labels), total)
        for labels, total in _summed(reconciliation_amounts(self.engine, since)):
            amounts.add_metric(list(labels), total)
        for b in break_ages(self.engine, now):
            breaks.add_metric([b.provider, b.age], b.count)
        deliveries = _gauge(BY_NAME["paysignal_alert_notifications"])
        for receiver, state, count in notification_states(self.engine, now - timedelta(days=1)):
            deliveries.add_metric([receiver, state], count)
        yield from (open_, oldest, pending, pending_age, imbalance, modes, lines, amounts,
                    breaks, deliveries)


def _summed(figures: list[ReconciliationFigure]) -> list[tuple[tuple[str, ...], int]]:
    """Figures added up per (provider, [currency,] result), in label order."""
    sums: dict[tuple[str, ...], int] = {}
    for f in figures:
        key = (f.provider, f.result) if f.currency is None else (f.provider, f.currency, f.result)
        sums[key] = sums.get(key, 0) + f.value
    return sorted(sums.items())
