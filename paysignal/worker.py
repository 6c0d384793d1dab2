"""What runs in the worker (`paysignal serve worker`): every scheduled job, its interval and
what it does. Each job is idempotent and claims its run slot (engine.scheduling.Worker), so any
number of workers may run these."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from alerts.detectors import Thresholds, detect
from alerts.pipeline import evaluate_alerts
from alerts.receivers import deliver_pending
from alerts.routing import load_config, record_routing_in_use
from engine.outbox.relay import OutboxRelay, sink_from_environment
from engine.payments.resolution import RESOLVE_UNKNOWN_EVERY
from engine.payments.service import PaymentService
from engine.scheduling import Job
from engine.settlement.run import reconcile_directory
from paysignal.bootstrap import alert_thresholds
from paysignal.settings import Settings, load_settings
from slo.backends import make_backend
from slo.evaluate import evaluate_all
from slo.spec import load_definitions


def worker_jobs(engine: Engine, service: PaymentService, settings: Settings | None = None,
                ) -> list[Job]:
    """The worker's jobs. PAYSIGNAL_WORKER_INTERVAL_SCALE shrinks every interval (tests)."""
    settings = settings or load_settings()
    scale = settings.worker_interval_scale
    relay = OutboxRelay(engine, sink_from_environment())
    jobs = [
        Job("outbox_relay", 2 * scale, lambda: {"published": relay.drain()}),
        Job("unknown_outcome_resolver", RESOLVE_UNKNOWN_EVERY.total_seconds() * scale,
            service.resolve_unknown_outcomes),
        Job("abandoned_request_recovery", 30 * scale,
            lambda: {"recovered": service.recover_abandoned()}),
        Job("customer_action_expiry", 60 * scale, service.expire_customer_actions),
        Job("idempotency_key_expiry", 3600 * scale, lambda: {"expired": service.expire_keys()}),
    ]
    settlement_dir = settings.settlement_dir
    if settlement_dir:
        min_age_s = settings.settlement_min_age_s

        def reconcile() -> dict[str, object]:
            report = reconcile_directory(engine, settlement_dir, min_age_s=min_age_s)
            return {"breaks": sum(len(day.breaks) for day in report.days),
                    "files": len(report.imports),
                    "skipped": {f.file: f"{f.status}: {f.reason}" for f in report.skipped}}

        jobs.append(Job("settlement_reconcile", 600 * scale, reconcile))
    jobs.append(Job("slo_evaluation", 60 * scale, _slo_evaluation(engine, settings)))
    jobs.append(Job("alert_evaluation", 60 * scale,
                    _alert_evaluation(engine, alert_thresholds(settings), settings.alert_routes)))
    return jobs


def _slo_evaluation(engine: Engine, settings: Settings) -> Callable[[], dict[str, object]]:
    slos = load_definitions()  # a bad definition stops the worker at start, loudly
    backend = make_backend(settings.sli_backend, engine=engine,
                           prometheus_url=settings.prometheus_url)

    def run() -> dict[str, object]:
        results = evaluate_all(engine, backend, slos)
        return {"evaluated": len(results),
                "firing": sorted({r.slo.name for r in results
                                  if any(not c.inhibited_by for c in r.conditions)})}

    return run


def _alert_evaluation(engine: Engine, thresholds: Thresholds, routes: Path | None,
                      ) -> Callable[[], dict[str, object]]:
    routing = load_config(routes)
    record_routing_in_use(engine, routes, "worker")

    def run() -> dict[str, object]:
        result = evaluate_alerts(engine, routing, detect(engine, datetime.now(UTC), thresholds))
        return {"firing": len(result.firing), "notifications": result.notifications,
                **deliver_pending(engine, routing)}

    return run
