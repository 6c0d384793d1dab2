"""ASGI middleware: the request span, request metrics, and the body-size limit."""

from __future__ import annotations

import logging
import time

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api.problems import problem
from engine.observability.metrics import Metrics
from engine.observability.tracing import tracer

log = logging.getLogger("paysignal.api")


class _StatusRecorder:
    """Wraps `send` to remember the response status (500 until one is sent)."""

    def __init__(self, send: Send) -> None:
        self.code, self._send = 500, send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.code = message["status"]
        await self._send(message)


def _route_of(scope: Scope) -> str:
    """The route template (never the concrete path, which would explode label cardinality)."""
    return getattr(scope.get("route"), "path", None) or "unmatched"


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
    """Counts requests and their duration by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = _StatusRecorder(send)
        try:
            await self.app(scope, receive, status)
        finally:
            route, method = _route_of(scope), scope["method"]
            self.metrics.inc("paysignal_http_requests_total", route=route, method=method,
                             status=str(status.code))
            self.metrics.observe("paysignal_http_request_duration_seconds",
                                 time.perf_counter() - started, route=route, method=method)


class TraceRequests:
    """One trace per request: a server span named by the route template, and a log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = _StatusRecorder(send)
        with tracer.start_as_current_span(f"HTTP {scope['method']}",
                                          kind=trace.SpanKind.SERVER) as span:
            try:
                await self.app(scope, receive, status)
            finally:
                route = _route_of(scope)
                span.update_name(f"{scope['method']} {route}")
                log.info("request", extra={"route": route, "method": scope["method"],
                                           "status": status.code})
                span.set_attributes({"http.request.method": scope["method"], "http.route": route,
                                     "http.response.status_code": status.code})


