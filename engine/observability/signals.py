"""The signal catalogue: every metric's name, type, help and labels, in one place.

Code registers metrics from here; the README's signal table and the SLO definitions read it.
Labels are low-cardinality by construction: never a payment, merchant or key id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Payment latencies: most provider calls take 50 ms to 2 s; timeouts sit at 10-30 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    kind: Literal["counter", "histogram", "gauge"]
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()  # histograms only; default LATENCY_BUCKETS


CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec("paysignal_http_requests_total", "counter",
               "HTTP requests handled, by route template, method and status code",
               ("route", "method", "status")),
    MetricSpec("paysignal_http_request_duration_seconds", "histogram",
               "HTTP request duration, by route template and method", ("route", "method")),
    MetricSpec("paysignal_payment_transitions_total", "counter",
               "Payment state transitions, by from-state, to-state and provider",
               ("from_state", "to_state", "provider")),
    MetricSpec("paysignal_idempotency_requests_total", "counter",
               "Idempotency-Key outcomes: new, replayed, conflict, in_flight, recovered",
               ("outcome",)),
    MetricSpec("paysignal_idempotency_shadow_detections_total", "counter",
               "Would-be duplicates let through by shadow mode, by provider, payment-method type "
               "and what enforcement would have done (replay or conflict)",
               ("provider", "method_type", "would_be")),
    MetricSpec("paysignal_idempotency_enforcement_mode", "gauge",
               "Rollout toggle state: 1 for the current mode of each provider and payment-method "
               "type (* for any); narrower toggles are listed by the admin API and `paysignal "
               "toggles list`, never in a label", ("provider", "method_type", "mode")),
    MetricSpec("paysignal_provider_call_duration_seconds", "histogram",
               "Provider call duration, by provider, operation and normalized outcome",
               ("provider", "operation", "outcome")),
    MetricSpec("paysignal_provider_retries_total", "counter",
               "Provider calls retried after a retryable error", ("provider", "operation")),
    MetricSpec("paysignal_retry_budget_exhausted_total", "counter",
               "Retries refused because the retry budget was spent", ("provider",)),
    MetricSpec("paysignal_unknown_outcomes_total", "counter",
               "Provider calls whose outcome was unknown (timeout after maybe charging)",
               ("provider",)),
    MetricSpec("paysignal_unknown_outcomes_resolved_total", "counter",
               "Unknown outcomes settled by asking the provider, by resulting state",
               ("provider", "result")),
    MetricSpec("paysignal_webhook_events_total", "counter",
               "Provider notifications by result: settled, recorded, ignored (verified, of a "
               "type or state paysignal does not act on), duplicate, unmatched, bad_signature, "
               "malformed, rate_limited", ("provider", "result")),
    MetricSpec("paysignal_unknown_outcome_resolution_seconds", "histogram",
               "How long payments stayed unknown before the provider's answer settled them",
               ("provider",), buckets=(60.0, 300.0, 900.0, 1800.0, 3600.0, 21600.0, 86400.0)),
    MetricSpec("paysignal_webhook_processing_lag_seconds", "histogram",
               "Seconds from a provider signing a notification to paysignal having processed it",
               ("provider",), buckets=(1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0)),
    MetricSpec("paysignal_unknown_outcomes_open", "gauge",
               "Payments currently in the unknown state", ("provider",)),
    MetricSpec("paysignal_unknown_outcome_oldest_age_seconds", "gauge",
               "Age of the oldest payment in the unknown state", ("provider",)),
    MetricSpec("paysignal_outbox_pending_events", "gauge", "Outbox events not yet published"),
    MetricSpec("paysignal_outbox_oldest_pending_age_seconds", "gauge",
               "Age of the oldest unpublished outbox event"),
    MetricSpec("paysignal_job_duration_seconds", "histogram",
               "Duration of scheduled worker job runs", ("job",)),
    MetricSpec("paysignal_job_last_success_timestamp_seconds", "gauge",
               "Unix time of the last successful run of each worker job", ("job",)),
    MetricSpec("paysignal_job_failures_total", "counter", "Failed worker job runs", ("job",)),
    MetricSpec("paysignal_ledger_imbalance_minor", "gauge",
               "Sum of journal imbalances in minor units (must be 0)", ("currency",)),
    MetricSpec("paysignal_alert_notifications", "gauge",
               "Alert notifications of the last 24 h by receiver and state: delivered, pending "
               "(not yet due or first try), failing (undelivered after a failed attempt)",
               ("receiver", "state")),
    MetricSpec("paysignal_reconciliation_lines", "gauge",
               "Settlement lines of the last 35 reconciled days: matched, or in breaks",
               ("provider", "result")),
    MetricSpec("paysignal_reconciliation_amount_minor", "gauge",
               "Settled amount of the last 35 reconciled days in minor units of `currency`: "
               "matched, or at stake in breaks (never add series of different currencies)",
               ("provider", "currency", "result")),
    MetricSpec("paysignal_reconciliation_breaks", "gauge",
               "Reconciliation breaks opened in the last 35 days by age class: handled or "
               "open within 48 h (under_48h), or not (over_48h)", ("provider", "age")),
)

BY_NAME: dict[str, MetricSpec] = {m.name: m for m in CATALOGUE}


def catalogue_markdown() -> str:
    lines = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for m in CATALOGUE:
        lines.append(f"| `{m.name}` | {m.kind} | {', '.join(m.labels) or '—'} | {m.help} |")
    return "\n".join(lines)
