"""The one place that wires real adapters together. Every process (`serve api`, `serve worker`,
the crash worker, `paysignal demo`), every simulation and every test rig builds its payment
service here, from one Settings object: production and the simulation differ only in what they
pass for time, randomness and ids, never in how the service is put together."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import Engine

from alerts.detectors import Thresholds
from engine.domain.retry import (
    ExponentialJitter,
    RetryBudget,
    RetryPolicy,
    stop_after_attempt,
    stop_after_delay,
)
from engine.observability.metrics import Metrics, PrometheusObserver
from engine.observability.observer import EngineObserver
from engine.payments.service import EngineSettings, PaymentService
from engine.payments.toggles import ToggleReader
from engine.providers.base import Gateway
from engine.providers.registry import connectors_from_environment
from engine.read_models.gauges import watch_tables
from paysignal.settings import Settings, load_settings


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Environment:
    """What a process takes from the world: the time, a way to wait, randomness and new ids.
    Production's is the operating system's (the retry jitter from its entropy, so no two
    processes back off in step); a simulation passes its virtual clock and seeded RNG."""

    clock: Callable[[], datetime] = _utc_now
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.SystemRandom)
    new_id: Callable[[str], str] | None = None  # None: a random id (engine.domain.ids)


OPERATING_SYSTEM = Environment()


def retry_policy(settings: Settings, environment: Environment = OPERATING_SYSTEM) -> RetryPolicy:
    """Retries of provider calls that surely did not reach the provider, bounded by attempts,
    a deadline and a retry budget shared by every call of the process."""
    budget = RetryBudget(ratio=settings.retry_budget_ratio,
                         min_retries=settings.retry_budget_min_retries,
                         window_s=settings.retry_budget_window_s, clock=environment.monotonic)
    return RetryPolicy(
        stop=stop_after_attempt(settings.retry_max_attempts)
        | stop_after_delay(settings.retry_deadline_s),
        wait=ExponentialJitter(settings.retry_initial_backoff_s, 2.0,
                               settings.retry_max_backoff_s),
        clock=environment.monotonic, sleep=environment.sleep, rng=environment.rng, budget=budget)


def alert_thresholds(settings: Settings) -> Thresholds:
    """The operational alerts' thresholds as the settings give them."""
    return Thresholds(unknown_after=timedelta(minutes=settings.alert_unknown_after_min),
                      confirmation_after=timedelta(minutes=settings.alert_confirmation_after_min),
                      customer_action_after=timedelta(
                          minutes=settings.alert_customer_action_after_min),
                      outbox_after=timedelta(minutes=settings.alert_outbox_after_min),
                      break_amount_minor=settings.alert_break_amount_minor,
                      bad_signatures=settings.alert_bad_signatures,
                      dispute_ratio=settings.alert_dispute_rate_pct / 100,
                      dispute_min_count=settings.alert_dispute_min_count)


class _FromDatabase:
    """The rollout toggles as the tables hold them (production's default)."""


FROM_DATABASE = _FromDatabase()


def build_service(engine: Engine, settings: Settings | None = None, *,
                  gateways: Mapping[str, Gateway] | None = None,
                  observer: EngineObserver | None = None,
                  environment: Environment = OPERATING_SYSTEM,
                  toggles: ToggleReader | _FromDatabase | None = FROM_DATABASE,
                  actor: str = "engine") -> PaymentService:
    """The payment service. `gateways` default to a connector for each provider with
    credentials in the environment (its real host, or wherever its base URL points);
    `toggles=None` enforces the Idempotency-Key everywhere without reading the toggles."""
    settings = settings or load_settings()
    return PaymentService(
        engine, connectors_from_environment() if gateways is None else gateways,
        clock=environment.clock, retry_policy=retry_policy(settings, environment),
        observer=observer, new_id=environment.new_id,
        settings=EngineSettings(lock_timeout_s=settings.idempotency_lock_timeout_s,
                                key_ttl_s=settings.idempotency_key_ttl_s, actor=actor,
                                customer_action_timeout_s=settings.customer_action_timeout_s),
        toggles=ToggleReader(engine) if isinstance(toggles, _FromDatabase) else toggles)


def build_observed_service(engine: Engine, settings: Settings | None = None,
                           ) -> tuple[PaymentService, Metrics]:
    """The service with its Prometheus metrics, including the gauges read from the tables at
    scrape time: what `serve api` and `serve worker` both run."""
    settings = settings or load_settings()
    metrics = Metrics()
    service = build_service(engine, settings, observer=PrometheusObserver(metrics))
    watch_tables(metrics, engine, list(service.gateways), ttl_s=settings.table_gauges_ttl_s)
    metrics.start_provider_series(list(service.gateways))
    return service, metrics


def build_api(engine: Engine, settings: Settings | None = None) -> tuple[FastAPI, Metrics]:
    """The API as `serve api` runs it, and the metrics it exposes on a listener of its own."""
    from paysignal.api import api_app

    settings = settings or load_settings()
    service, metrics = build_observed_service(engine, settings)
    return api_app(engine, service, settings, metrics=metrics), metrics
