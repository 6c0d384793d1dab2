"""Gauges read from the tables of record at scrape time (unknown outcomes, the outbox, the
ledger, rollout toggles, notifications, reconciliation), at most once per TTL however often
anyone scrapes."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from engine.observability.metrics import Metrics
from engine.observability.signals import MetricSpec
from engine.payments.toggles import ANY, DEFAULT_MODE, Mode, current_modes
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


def _gauge(spec: MetricSpec) -> GaugeMetricFamily:
    return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


RECONCILIATION_GAUGE_WINDOW = timedelta(days=35)


class TableGauges(Collector):
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
        current = {(p, ANY): DEFAULT_MODE.value for p in self.providers}
        current.update({(t["provider"], t["method_type"]): t["mode"]
                        for t in current_modes(self.engine) if t["merchant_id"] == ANY})
        for (provider, method_type), mode in sorted(current.items()):
            for candidate in Mode:
                modes.add_metric([provider, method_type, candidate.value],
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


def watch_tables(metrics: Metrics, engine: Engine, providers: list[str] | None = None,
                 ttl_s: float = 15.0) -> TableGauges:
    """Register the table gauges in `metrics`' registry; returns the collector."""
    gauges = TableGauges(engine, providers or [], ttl_s)
    metrics.registry.register(gauges)
    return gauges
