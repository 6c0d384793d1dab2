"""The HTTP API as `paysignal serve api` runs it: the engine's payment API with its metrics,
plus the alerts package's admin routes (silences)."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from alerts.api import silences_router
from engine.api.app import create_app
from engine.observability.metrics import Metrics
from engine.payments.service import PaymentService
from paysignal.settings import Settings, load_settings


def api_app(engine: Engine, service: PaymentService, settings: Settings | None = None, *,
            metrics: Metrics | None = None) -> FastAPI:
    """Every route paysignal serves on its public port: the engine's and the alerts package's
    silences. /metrics is not among them: `serve api` serves it on a listener of its own."""
    settings = settings or load_settings({})
    return create_app(engine, service, metrics=metrics, max_body_bytes=settings.max_body_bytes,
                      concurrency=settings.api_concurrency,
                      webhook_rejections_per_minute=settings.webhook_rejections_per_minute,
                      routers=[silences_router(engine)], metrics_route=False)
