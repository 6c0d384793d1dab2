"""Prometheus adapter: registers the catalogue's metrics and feeds them from engine events
(the gauges read from the tables are engine.read_models.gauges)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from engine.domain.operations import Operation
from engine.observability.observer import EngineObserver
from engine.observability.signals import CATALOGUE, LATENCY_BUCKETS
from engine.providers.base import OutcomeKind

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
