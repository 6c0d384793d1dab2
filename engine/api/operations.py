"""What operators and orchestrators poll: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse, Response

from engine.api.errors import problem_responses
from engine.api.problems import problem
from engine.exceptions import PaysignalError
from engine.observability.metrics import Metrics
from engine.storage import db


def operations_router(engine: Engine, metrics: Metrics | None) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", responses=problem_responses(503))
    def readyz() -> Response:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            db.require_current_schema(engine)
        except (SQLAlchemyError, PaysignalError) as exc:
            detail = str(exc) if isinstance(exc, PaysignalError) else "database not reachable"
            return problem("service-unavailable", detail)
        return JSONResponse({"status": "ready", "schema": db.head_revision()})

    @router.get("/metrics", include_in_schema=False)
    def metrics_endpoint(request: Request) -> Response:
        if metrics is None:
            return problem("not-found", "metrics are not enabled in this process")
        if "application/openmetrics-text" in request.headers.get("accept", ""):
            # prometheus_client's OpenMetrics exposition carries no annotations
            exposition: bytes = openmetrics_latest(metrics.registry)  # type: ignore[no-untyped-call]
            return Response(exposition, media_type=OPENMETRICS_TYPE)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
