"""The payment HTTP API (FastAPI). OpenAPI is served at /openapi.json."""


import hmac
import logging
import os
import time
from datetime import datetime
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, create_model
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.storage import db
from engine.api.problems import PROBLEM_JSON, problem, problem_for
from engine.domain.money import CURRENCY_EXPONENTS, MAX_AMOUNT_MINOR
from engine.domain.states import PaymentState
from engine.exceptions import PaysignalError
from engine.payments.merchants import authenticate
from engine.observability.metrics import Metrics
from engine.read_models.payments import list_payments, payment_detail
from engine.payments.service import MAX_KEY_LENGTH, PaymentService, ServiceResponse
from engine.observability.tracing import tracer

log = logging.getLogger("paysignal.api")
DEFAULT_MAX_BODY_BYTES = 64 * 1024


Currency = Literal[tuple(sorted(CURRENCY_EXPONENTS))]  # type: ignore[valid-type]
State = Literal[tuple(s.value for s in PaymentState)]  # type: ignore[valid-type]
def _integral_number(value: Any) -> Any:
    """JSON has one number type: 1299.0 is the integer 1299, but 12.99, "1299" and true are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The validator goes last: pydantic then still publishes minimum/maximum in the schema.
Amount = Annotated[int, Strict(), Field(ge=1, le=MAX_AMOUNT_MINOR, description="Minor units"),
                   BeforeValidator(_integral_number)]


def create_payment_model(providers: list[str]) -> type[BaseModel]:
    """The create-payment body; its provider enum is the providers this process runs."""
    return create_model(
        "CreatePaymentRequest",
        __config__=ConfigDict(extra="forbid"),
        amount=(Amount, Field(examples=[1299])),
        currency=(Currency, Field(description="ISO 4217 code", examples=["USD"])),
        capture=(Literal["automatic", "manual"], "automatic"),
        reference=(str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$",
                              examples=["order-1042"],
                              description="The merchant's own reference (no control characters)")),
        payment_method=(str, Field(pattern=r"^tok_[A-Za-z0-9_]{1,60}$", examples=["tok_approve"],
                                   description="A payment-method token; never a card number")),
        provider=(Literal[tuple(sorted(providers))] | None,  # type: ignore[valid-type]
                  Field(default=None, description="Force a provider; otherwise routed")),
    )


class AmountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Amount | None = Field(default=None, description="Minor units; omit for all")


class Payment(BaseModel):
    id: str
    state: str
    amount: int
    currency: str
    provider: str
    reference: str
    created_at: str
    capture: str
    captured_amount: int
    refunded_amount: int
    merchant_id: str
    provider_reference: str | None
    decline_reason: str | None


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


def _problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": Problem, "content": {PROBLEM_JSON: {}}} for c in codes}


class BodySizeLimit:
    """Refuses bodies over the limit with 413 before the app reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_large = problem("request-too-large", f"the body must be at most {self.max_bytes} bytes")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await too_large(scope, receive, send)
            return
        received, responded = 0, False

        async def guarded_send(message: Message) -> None:
            if not responded:
                await send(message)

        async def limited_receive() -> Message:
            # A body without Content-Length is counted as it streams in.
            nonlocal received, responded
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes and not responded:
                await too_large(scope, receive, send)
                responded = True
                return {"type": "http.disconnect"}
            return message

        await self.app(scope, limited_receive, guarded_send)


class RequestMetrics:
    """Counts requests and their duration by route template (never by concrete path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.inc("paysignal_http_requests_total", route=route, method=method,
                             status=str(status["code"]))
            self.metrics.observe("paysignal_http_request_duration_seconds",
                                 time.perf_counter() - started, route=route, method=method)


class TraceRequests:
    """One trace per request: a server span named by the route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        with tracer.start_as_current_span(f"HTTP {scope['method']}",
                                          kind=trace.SpanKind.SERVER) as span:
            try:
                await self.app(scope, receive, recording_send)
            finally:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                span.update_name(f"{scope['method']} {route}")
                log.info("request", extra={"route": route, "method": scope["method"],
                                           "status": status["code"]})
                span.set_attributes({"http.request.method": scope["method"], "http.route": route,
                                     "http.response.status_code": status["code"]})


AdminRoutes = Callable[[FastAPI, Engine, Callable[..., None],
                        Callable[..., dict[int | str, dict[str, Any]]]], None]


def create_app(engine: Engine, service: PaymentService, *,
               max_body_bytes: int | None = None, metrics: Metrics | None = None,
               admin_routes: Sequence[AdminRoutes] = ()) -> FastAPI:
    # FastAPI's native telemetry is off: TraceRequests owns the request span (outermost, so the
    # request metrics and logs see it) and metrics are Prometheus, from the signal catalogue.
    app = FastAPI(title="paysignal payment API", version="1",
                  description="Idempotent payments. Every POST needs an Idempotency-Key header.",
                  telemetry={"tracing": False, "metrics": False, "logs": False,
                             "operation_spans": False})
    limit = max_body_bytes or int(os.environ.get("PAYSIGNAL_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))

    # --- errors: always problem+json, never a stack trace --------------------------------

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "header", "path")]
            field = ".".join(loc) or "body"
            if field == "Idempotency-Key" and err.get("type") == "missing":
                return await _missing_key(_request, _MissingKey())
            errors.append({"field": field, "reason": err.get("msg", "invalid")})
        return problem("validation-error", "the request is not valid", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return problem("not-found", "no such resource")
        if exc.status_code == 405:
            return problem("method-not-allowed", "this method is not allowed here")
        return problem("validation-error", str(exc.detail))

    @app.exception_handler(PaysignalError)
    async def _engine_error(_request: Request, exc: PaysignalError) -> Response:
        return problem_for(exc) or problem("internal-error", "the request could not be completed")

    @app.exception_handler(DataError)
    async def _unstorable(_request: Request, exc: DataError) -> Response:
        log.warning("database refused a value: %s", type(exc.orig).__name__)
        return problem("validation-error", "a value in the request cannot be stored")

    @app.exception_handler(SQLAlchemyError)
    async def _database(_request: Request, exc: SQLAlchemyError) -> Response:
        log.error("database error: %s", type(exc).__name__)
        return problem("service-unavailable", "the database is not reachable; retry with the "
                       "same Idempotency-Key", headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        log.error("unexpected error: %s", type(exc).__name__)
        return problem("internal-error", "the request could not be completed; retry with the "
                       "same Idempotency-Key")

    # --- dependencies --------------------------------------------------------------------

    bearer = HTTPBearer(auto_error=False, description="The merchant's API key")

    def merchant(credentials: Annotated[HTTPAuthorizationCredentials | None,
                                        Depends(bearer)] = None) -> str:
        token = credentials.credentials.strip() if credentials else ""
        merchant_id = authenticate(engine, token) if token else None
        if merchant_id is None:
            raise _Unauthorized
        return merchant_id

    def idempotency_key(key: Annotated[str, Header(
            alias="Idempotency-Key", min_length=1, max_length=MAX_KEY_LENGTH,
            description="Unique per operation; a retry with the same key replays the result")],
                        ) -> str:
        if not key.strip():
            raise _MissingKey
        return key

    @app.exception_handler(_Unauthorized)
    async def _unauthorized(_request: Request, _exc: _Unauthorized) -> Response:
        return problem("unauthorized", "send 'Authorization: Bearer <API key>'",
                       headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(_MissingKey)
    async def _missing_key(_request: Request, _exc: _MissingKey) -> Response:
        return problem("idempotency-key-missing", "every POST needs an Idempotency-Key header",
                       errors=[{"field": "Idempotency-Key", "reason": "is required"}])

    Merchant = Annotated[str, Depends(merchant)]
    Key = Annotated[str, Depends(idempotency_key)]

    def reply(result: ServiceResponse) -> Response:
        headers = {"Idempotent-Replayed": "true"} if result.replayed else None
        return Response(result.body_text, status_code=result.status_code,
                        media_type="application/json", headers=headers)

    # --- payments --------------------------------------------------------------------------

    errors = _problem_responses(400, 401, 404, 409, 413, 422, 503)

    CreatePaymentRequest = create_payment_model(list(service.gateways))

    @app.post("/v1/payments", status_code=201, response_model=Payment, responses={
        **errors, 202: {"model": Payment, "description": "outcome unknown; being resolved"}})
    def create_payment(body: CreatePaymentRequest, merchant_id: Merchant,  # type: ignore[valid-type]
                       key: Key) -> Response:
        return reply(service.create_payment(merchant_id, key, body.model_dump()))  # type: ignore[attr-defined]

    @app.post("/v1/payments/{payment_id}/capture", response_model=Payment, responses={
        **errors, 202: {"model": Payment}, 502: {"model": Payment}})
    def capture(payment_id: str, merchant_id: Merchant, key: Key,
                body: AmountRequest | None = None) -> Response:
        return reply(service.capture(merchant_id, key, payment_id, body.amount if body else None))

    @app.post("/v1/payments/{payment_id}/void", response_model=Payment, responses={
        **errors, 202: {"model": Payment}, 502: {"model": Payment}})
    def void(payment_id: str, merchant_id: Merchant, key: Key) -> Response:
        return reply(service.void(merchant_id, key, payment_id))

    @app.post("/v1/payments/{payment_id}/refunds", response_model=Payment, responses={
        **errors, 202: {"model": Payment}, 502: {"model": Payment}})
    def refund(payment_id: str, merchant_id: Merchant, key: Key,
               body: AmountRequest | None = None) -> Response:
        return reply(service.refund(merchant_id, key, payment_id, body.amount if body else None))

    @app.post("/v1/webhooks/{provider}", responses=_problem_responses(400, 401, 404))
    async def webhook(provider: str, request: Request) -> Response:
        """A provider's signed notification. Authenticated by the provider's signature."""
        from starlette.concurrency import run_in_threadpool

        from engine.exceptions import ProviderNotFoundError
        from engine.payments.webhooks import WebhookRejectedError, ingest

        body = await request.body()
        try:
            result = await run_in_threadpool(ingest, service, provider, dict(request.headers),
                                             body)
        except WebhookRejectedError as exc:
            if exc.result == "bad_signature":
                return problem("unauthorized", str(exc))
            return problem("validation-error", str(exc))
        except ProviderNotFoundError:
            return problem("not-found", "no such provider")
        return JSONResponse({"result": result}, status_code=200)

    # --- admin: rollout toggles (only with PAYSIGNAL_ADMIN_TOKEN set) ---------------------

    def admin(credentials: Annotated[HTTPAuthorizationCredentials | None,
                                     Depends(bearer)] = None) -> None:
        expected = os.environ.get("PAYSIGNAL_ADMIN_TOKEN", "")
        given = credentials.credentials if credentials else ""
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise _Unauthorized

    class ToggleChange(BaseModel):
        model_config = ConfigDict(extra="forbid")
        mode: Literal["off", "shadow", "enforce"]
        actor: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
        payment_method: str = Field(default="*", pattern=r"^(\*|[A-Za-z0-9_-]{1,64})$")
        reason: str = Field(default="", max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")

    @app.get("/v1/admin/toggles", dependencies=[Depends(admin)],
             responses=_problem_responses(401))
    def get_toggles() -> dict[str, Any]:
        from engine.payments.toggles import audit_trail, current_modes

        return {"toggles": current_modes(engine), "audit": audit_trail(engine)}

    @app.put("/v1/admin/toggles/{provider}", dependencies=[Depends(admin)],
             responses=_problem_responses(400, 401))
    def put_toggle(provider: str, change: ToggleChange) -> dict[str, Any]:
        from engine.payments.toggles import set_mode

        return set_mode(engine, provider=provider, mode=change.mode, actor=change.actor,
                        known_providers=list(service.gateways),
                        payment_method=change.payment_method, reason=change.reason)

    # The wiring package hands over the later packages' admin routes (alerts' silences).
    for add_routes in admin_routes:
        add_routes(app, engine, admin, _problem_responses)

    @app.get("/v1/payments/{payment_id}", responses=_problem_responses(401, 404))
    def get_payment(payment_id: str, merchant_id: Merchant) -> dict[str, Any]:
        return payment_detail(engine, merchant_id, payment_id)

    @app.get("/v1/payments", responses=_problem_responses(400, 401))
    def get_payments(merchant_id: Merchant, state: State | None = None,  # type: ignore[valid-type]
                     provider: str | None = None, created_after: datetime | None = None,
                     limit: Annotated[int, Query(ge=1, le=100)] = 20,
                     cursor: str | None = None) -> dict[str, Any]:
        return list_payments(engine, merchant_id, state=state, provider=provider,
                             created_after=created_after, limit=limit, cursor=cursor)

    # --- health ----------------------------------------------------------------------------

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses=_problem_responses(503))
    def readyz() -> Response:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            db.require_current_schema(engine)
        except (SQLAlchemyError, PaysignalError) as exc:
            detail = str(exc) if isinstance(exc, PaysignalError) else "database not reachable"
            return problem("service-unavailable", detail)
        return JSONResponse({"status": "ready", "schema": db.head_revision()})

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint(request: Request) -> Response:
        if metrics is None:
            return problem("not-found", "metrics are not enabled in this process")
        accept = request.headers.get("accept", "")
        if "application/openmetrics-text" in accept:
            from prometheus_client.openmetrics.exposition import (
                CONTENT_TYPE_LATEST as OM_TYPE,
            )
            from prometheus_client.openmetrics.exposition import (
                generate_latest as om_latest,
            )
            return Response(om_latest(metrics.registry), media_type=OM_TYPE)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(BodySizeLimit, max_bytes=limit)
    if metrics is not None:
        app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(TraceRequests)  # outermost: metrics and logs see the trace
    return app


class _Unauthorized(Exception):
    pass


class _MissingKey(Exception):
    pass
