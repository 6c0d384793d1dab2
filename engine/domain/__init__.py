"""The pure payment domain: money, the state machine, the aggregate, ledger rules, retries."""

from engine.domain.fingerprint import differing_fields, request_fingerprint
from engine.domain.ledger import JournalEntry, JournalTransaction
from engine.domain.model import CaptureMode, DomainEvent, Payment, Transition
from engine.domain.money import Money
from engine.domain.operations import Operation
from engine.domain.retry import (
    ExponentialJitter,
    RetryBudget,
    RetryPolicy,
    stop_after_attempt,
    stop_after_delay,
)
from engine.domain.states import TRANSITIONS, PaymentState

__all__ = [
    "TRANSITIONS",
    "CaptureMode",
    "DomainEvent",
    "ExponentialJitter",
    "JournalEntry",
    "JournalTransaction",
    "Money",
    "Operation",
    "Payment",
    "PaymentState",
    "RetryBudget",
    "RetryPolicy",
    "Transition",
    "differing_fields",
    "request_fingerprint",
    "stop_after_attempt",
    "stop_after_delay",
]
