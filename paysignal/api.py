"""The HTTP API as `paysignal serve api` runs it: the engine's payment API with its metrics,
plus the alerts package's admin routes (silences)."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from alerts.api import silences_router
from engine.api.app import create_app
from engine.observability.metrics import Metrics
from engine.payments.service import PaymentService
from paysignal.bootstrap import build_observed_service


def api_app(engine: Engine, service: PaymentService, *, metrics: Metrics | None = None,
            max_body_bytes: int | None = None) -> FastAPI:
    """Every route paysignal serves on its public port: the engine's and the alerts package's
    silences. /metrics is not among them: `serve api` serves it on a listener of its own."""
    return create_app(engine, service, metrics=metrics, max_body_bytes=max_body_bytes,
                      routers=[silences_router(engine)], metrics_route=False)


def build_api(engine: Engine) -> tuple[FastAPI, Metrics]:
    """The API from the environment, and the metrics `serve api` exposes separately."""
    service, metrics = build_observed_service(engine)
    return api_app(engine, service, metrics=metrics), metrics
