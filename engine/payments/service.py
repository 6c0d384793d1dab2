"""The payment service: the operations a merchant asks for (create, capture, void, refund,
read), each run through the Idempotency-Key protocol (engine.payments.idempotency), and the
worker's resolution of unknown outcomes and abandoned requests (engine.payments.resolution)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from engine.domain.ids import new_random_id
from engine.domain.model import CaptureMode, Payment
from engine.domain.money import Money, validate_amount
from engine.domain.operations import Operation
from engine.domain.retry import RetryPolicy
from engine.domain.states import PaymentState
from engine.domain.text import is_identifier
from engine.exceptions import (
    PaymentNotFoundError,
    ProviderNotFoundError,
    UnknownOutcomeUnresolvedError,
)
from engine.observability.observer import EngineObserver
from engine.observability.tracing import current_ids
from engine.payments.idempotency import (
    EngineSettings,
    IdempotencyProtocol,
    KeyedRequest,
    ServiceResponse,
)
from engine.payments.resolution import Resolver
from engine.payments.routing import Router
from engine.payments.toggles import ToggleReader
from engine.payments.unit_of_work import UnitOfWork
from engine.payments.validation import parse_create_payment
from engine.providers.base import Gateway

__all__ = ["EngineSettings", "PaymentService", "ServiceResponse"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class PaymentService:
    def __init__(self, engine: Engine, gateways: Mapping[str, Gateway], *,
                 retry_policy: RetryPolicy,
                 clock: Callable[[], datetime] = utc_now,
                 observer: EngineObserver | None = None,
                 settings: EngineSettings | None = None,
                 new_id: Callable[[str], str] | None = None,
                 toggles: ToggleReader | None = None) -> None:
        self.engine = engine
        self.gateways = dict(gateways)
        self.clock = clock
        self.observer = observer or EngineObserver()
        self.settings = settings or EngineSettings()
        self.router = Router(list(gateways))
        self.protocol = IdempotencyProtocol(
            engine, self.gateways, clock=clock, retry_policy=retry_policy,
            observer=self.observer, settings=self.settings,
            new_id=new_id or new_random_id, toggles=toggles)
        self.resolver = Resolver(self.protocol)

    def unit_of_work(self) -> UnitOfWork:
        return self.protocol.unit_of_work()

    # --- what merchants ask for -----------------------------------------------------------

    def create_payment(self, merchant_id: str, idempotency_key: str, request: dict[str, Any],
                       trace_id: str | None = None) -> ServiceResponse:
        body = parse_create_payment(request, list(self.gateways))
        provider = body.provider or self.router.route(body.currency, body.reference)
        if provider not in self.gateways:
            raise ProviderNotFoundError(provider, sorted(self.gateways))
        gateway = self.gateways[provider]
        payment_method = gateway.validate_payment_method(body.payment_method)
        gateway.check_amount(body.amount, body.currency)
        method_type = gateway.method_type(payment_method).value
        trace_id = trace_id or current_ids()[0]
        payment_id = self.protocol.new_id("pay")
        params = {"amount": body.amount, "currency": body.currency, "capture": body.capture,
                  "reference": body.reference, "payment_method": payment_method,
                  "provider": provider,
                  # only when said: a request from before the field keeps its fingerprint
                  **({"initiator": body.initiator} if body.initiator != "customer" else {})}

        def build(_uow: UnitOfWork, key_id: str, now: datetime) -> Payment:
            payment = Payment.create(
                merchant_id=merchant_id, money=Money(body.amount, body.currency),
                provider=provider, reference=body.reference,
                capture_mode=CaptureMode(body.capture), at=now, payment_id=payment_id,
                method_type=method_type)
            payment.begin(Operation.AUTHORIZE, None, request_id=f"{key_id}:authorize",
                          actor=self.settings.actor, at=now, trace_id=trace_id)
            return payment

        return self.protocol.run(KeyedRequest(
            merchant_id=merchant_id, key=idempotency_key, operation="create_payment",
            first=Operation.AUTHORIZE, params=params, payment_id=payment_id, provider=provider,
            payment_method=payment_method, method_type=method_type, trace_id=trace_id,
            build=build, customer_present=body.initiator == "customer"))

    def capture(self, merchant_id: str, idempotency_key: str, payment_id: str,
                amount: int | None = None, trace_id: str | None = None) -> ServiceResponse:
        return self._operate(Operation.CAPTURE, merchant_id, idempotency_key, payment_id, amount,
                             trace_id)

    def void(self, merchant_id: str, idempotency_key: str, payment_id: str,
             trace_id: str | None = None) -> ServiceResponse:
        return self._operate(Operation.VOID, merchant_id, idempotency_key, payment_id, None,
                             trace_id)

    def refund(self, merchant_id: str, idempotency_key: str, payment_id: str,
               amount: int | None = None, trace_id: str | None = None) -> ServiceResponse:
        return self._operate(Operation.REFUND, merchant_id, idempotency_key, payment_id, amount,
                             trace_id)

    def get_payment(self, merchant_id: str | None, payment_id: str) -> Payment:
        if not is_identifier(payment_id):
            raise PaymentNotFoundError(payment_id)
        with self.unit_of_work() as uow:
            payment = uow.payments.get(payment_id, merchant_id)
        if payment is None:
            raise PaymentNotFoundError(payment_id)
        return payment

    def _operate(self, operation: Operation, merchant_id: str, idempotency_key: str,
                 payment_id: str, amount: int | None, trace_id: str | None) -> ServiceResponse:
        if amount is not None:
            validate_amount(amount)
        trace_id = trace_id or current_ids()[0]
        existing = self.get_payment(merchant_id, payment_id)
        if amount is not None and existing.provider in self.gateways:
            self.gateways[existing.provider].check_amount(amount, existing.currency)
        if existing.state is PaymentState.UNKNOWN:
            self.resolve_unknown(payment_id)

        def build(uow: UnitOfWork, key_id: str, now: datetime) -> Payment:
            payment = uow.payments.get(payment_id, merchant_id)
            if payment is None:
                raise PaymentNotFoundError(payment_id)
            if payment.state is PaymentState.UNKNOWN:
                raise UnknownOutcomeUnresolvedError(payment_id)
            payment.begin(operation, amount, request_id=f"{key_id}:{operation.value}",
                          actor=self.settings.actor, at=now, trace_id=trace_id)
            return payment

        return self.protocol.run(KeyedRequest(
            merchant_id=merchant_id, key=idempotency_key, operation=operation.value,
            first=operation, params={"payment_id": payment_id, "amount": amount},
            payment_id=payment_id, provider=existing.provider, payment_method=None,
            method_type=existing.method_type, trace_id=trace_id, build=build))

    # --- what the worker finishes ---------------------------------------------------------

    def resolve_unknown(self, payment_id: str, actor: str = "unknown-resolver") -> PaymentState:
        return self.resolver.resolve_unknown(payment_id, actor)

    def resolve_unknown_outcomes(self, limit: int = 1000) -> dict[str, int]:
        return self.resolver.resolve_unknown_outcomes(limit)

    def expire_customer_actions(self, limit: int = 1000) -> dict[str, int]:
        return self.resolver.expire_customer_actions(limit)

    def recover_abandoned(self, limit: int = 100) -> int:
        return self.resolver.recover_abandoned(limit)

    def expire_keys(self) -> int:
        return self.resolver.expire_keys()
