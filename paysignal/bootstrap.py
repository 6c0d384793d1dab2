"""The one place that wires real adapters together from the environment."""

from __future__ import annotations

import os

from sqlalchemy import Engine

from engine.exceptions import ConfigurationError
from engine.observability.metrics import Metrics, PrometheusObserver
from engine.observability.observer import EngineObserver
from engine.payments.service import EngineSettings, PaymentService
from engine.payments.toggles import ToggleReader
from engine.providers.registry import connectors_from_environment


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}: {raw!r} is not a number") from None
    if value <= 0:
        raise ConfigurationError(f"{name}: must be greater than zero")
    return value


def settings_from_environment() -> EngineSettings:
    return EngineSettings(
        lock_timeout_s=_float_env("PAYSIGNAL_IDEMPOTENCY_LOCK_TIMEOUT_S", 60.0),
        key_ttl_s=_float_env("PAYSIGNAL_IDEMPOTENCY_KEY_TTL_S", 24 * 3600.0),
    )


def build_service(engine: Engine, observer: EngineObserver | None = None) -> PaymentService:
    """The service as `serve` and the worker run it: a connector for each provider with
    credentials in the environment (its real host, or wherever its base URL points)."""
    return PaymentService(engine, connectors_from_environment(), settings=settings_from_environment(),
                          observer=observer, toggles=ToggleReader(engine))


def build_observed_service(engine: Engine) -> tuple[PaymentService, Metrics]:
    """The service with its Prometheus metrics, including the gauges read from the tables at
    scrape time: what `serve api` and `serve worker` both run."""
    metrics = Metrics()
    service = build_service(engine, PrometheusObserver(metrics))
    metrics.watch_tables(engine, list(service.gateways))
    metrics.start_provider_series(list(service.gateways))
    return service, metrics
