"""Providers' signed notifications. Authenticated by the provider's signature, not an API key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from engine.api.errors import problem_responses
from engine.api.problems import problem
from engine.exceptions import ProviderNotFoundError
from engine.payments.service import PaymentService
from engine.payments.webhooks import RejectionLimiter, WebhookRejectedError, ingest


def webhooks_router(service: PaymentService, rejections_per_minute: int = 60) -> APIRouter:
    router = APIRouter()
    limiter = RejectionLimiter(rejections_per_minute)

    @router.post("/v1/webhooks/{provider}", responses=problem_responses(400, 401, 404, 429))
    async def webhook(provider: str, request: Request) -> Response:
        """A provider's signed notification."""
        body = await request.body()
        try:
            await run_in_threadpool(ingest, service, provider, dict(request.headers), body,
                                    None, limiter)
        except WebhookRejectedError as exc:
            if exc.result == "bad_signature":
                return problem("unauthorized", str(exc))
            if exc.result == "rate_limited":
                return problem("too-many-requests", str(exc), headers={"Retry-After": "60"})
            return problem("validation-error", str(exc))
        except ProviderNotFoundError:
            return problem("not-found", "no such provider")
        # The same answer whatever became of it (the one the provider expects): a sender
        # learns nothing about our payments.
        ack = service.gateways[provider].acknowledgement()
        return Response(ack.body, status_code=ack.status, media_type=ack.media_type)

    return router
