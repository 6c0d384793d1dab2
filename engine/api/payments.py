"""The merchant's payment routes: create, capture, void, refund, read, list."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which name
# dependencies defined inside payments_router.
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import Engine
from starlette.responses import Response

from engine.api.dependencies import IdempotencyKey, merchant_dependency
from engine.api.errors import problem_responses
from engine.domain.states import PaymentState
from engine.payments.service import PaymentService, ServiceResponse
from engine.payments.validation import AmountRequest, create_payment_model
from engine.read_models.payments import list_payments, payment_detail

StateName: Any = Literal[tuple(s.value for s in PaymentState)]  # built at run time


class Refund(BaseModel):
    id: str
    amount: int
    status: Literal["succeeded", "failed", "pending"]


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
    refund: Refund | None = None  # in a refund's answer: the refund this request made


def _reply(result: ServiceResponse) -> Response:
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return Response(result.body_text, status_code=result.status_code,
                    media_type="application/json", headers=headers)


def payments_router(engine: Engine, service: PaymentService) -> APIRouter:
    router = APIRouter()
    Merchant = Annotated[str, Depends(merchant_dependency(engine))]
    errors = problem_responses(400, 401, 404, 409, 413, 422, 503)
    later = {**errors, 202: {"model": Payment}, 502: {"model": Payment}}
    CreatePaymentRequest: Any = create_payment_model(tuple(sorted(service.gateways)))

    @router.post("/v1/payments", status_code=201, response_model=Payment, responses={
        **errors, 202: {"model": Payment, "description": "outcome unknown; being resolved"}})
    def create_payment(body: CreatePaymentRequest, merchant_id: Merchant,
                       key: IdempotencyKey) -> Response:
        return _reply(service.create_payment(merchant_id, key, body.model_dump()))

    @router.post("/v1/payments/{payment_id}/capture", response_model=Payment, responses=later)
    def capture(payment_id: str, merchant_id: Merchant, key: IdempotencyKey,
                body: AmountRequest | None = None) -> Response:
        return _reply(service.capture(merchant_id, key, payment_id, body.amount if body else None))

    @router.post("/v1/payments/{payment_id}/void", response_model=Payment, responses=later)
    def void(payment_id: str, merchant_id: Merchant, key: IdempotencyKey) -> Response:
        return _reply(service.void(merchant_id, key, payment_id))

    @router.post("/v1/payments/{payment_id}/refunds", response_model=Payment, responses=later)
    def refund(payment_id: str, merchant_id: Merchant, key: IdempotencyKey,
               body: AmountRequest | None = None) -> Response:
        return _reply(service.refund(merchant_id, key, payment_id, body.amount if body else None))

    @router.get("/v1/payments/{payment_id}", responses=problem_responses(401, 404))
    def get_payment(payment_id: str, merchant_id: Merchant) -> dict[str, Any]:
        return payment_detail(engine, merchant_id, payment_id)

    @router.get("/v1/payments", responses=problem_responses(400, 401))
    def get_payments(merchant_id: Merchant, state: StateName | None = None,
                     provider: str | None = None, created_after: datetime | None = None,
                     limit: Annotated[int, Query(ge=1, le=100)] = 20,
                     cursor: str | None = None) -> dict[str, Any]:
        return list_payments(engine, merchant_id, state=state, provider=provider,
                             created_after=created_after, limit=limit, cursor=cursor)

    return router
