"""The payment HTTP API: routers for payments, webhooks, admin and operations, the error
handlers, and the middleware. The wiring package (paysignal.api) adds the later packages'
routers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline
from sqlalchemy import Engine

from engine.api.admin import toggles_router
from engine.api.errors import install_error_handlers
from engine.api.middleware import BodySizeLimit, RequestMetrics, TraceRequests
from engine.api.operations import operations_router
from engine.api.payments import payments_router
from engine.api.webhooks import webhooks_router
from engine.observability.metrics import Metrics
from engine.payments.service import PaymentService

DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_CONCURRENCY = 16


def freeze_start_up_objects() -> None:
    """Call once a process has started: what starting made (modules, the app, pools) lives as
    long as the process, so it is frozen out of the garbage collector's sight and full
    collections stop pausing requests for tens of milliseconds walking it."""
    gc.collect()
    gc.freeze()


def create_app(engine: Engine, service: PaymentService, *,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, metrics: Metrics | None = None,
               routers: Sequence[APIRouter] = (), metrics_route: bool = True,
               concurrency: int = DEFAULT_CONCURRENCY,
               webhook_rejections_per_minute: int = 60) -> FastAPI:
    """The API. With `metrics_route` it also answers /metrics itself (embedded use, tests);
    the served API leaves that to a separate loopback listener (paysignal.api). `concurrency`:
    requests worked on at once, each on a thread holding one pooled database connection (the
    pool is sized to it, so a busy API never opens connections past the pool)."""
    # FastAPI's native telemetry is off: TraceRequests owns the request span (outermost, so the
    # request metrics and logs see it) and metrics are Prometheus, from the signal catalogue.
    # FastAPIOffline serves Swagger UI's and ReDoc's assets from the package: /docs works on a
    # closed network (FastAPI's default loads them from a CDN)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = concurrency
        yield

    app: FastAPI = FastAPIOffline(
        title="paysignal payment API", version="1", lifespan=lifespan,
        description="Idempotent payments. Every POST needs an Idempotency-Key header.",
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False})
    install_error_handlers(app)
    app.include_router(payments_router(engine, service))
    app.include_router(webhooks_router(service, webhook_rejections_per_minute))
    app.include_router(toggles_router(engine, list(service.gateways)))
    for router in routers:
        app.include_router(router)
    app.include_router(operations_router(engine, metrics if metrics_route else None))
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    if metrics is not None:
        app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(TraceRequests)  # outermost: metrics and logs see the trace
    return app
