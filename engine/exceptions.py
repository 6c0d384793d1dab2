"""Every error the engine raises on purpose. Each names what was wrong."""

from __future__ import annotations


class PaysignalError(Exception):
    """Base class of every deliberate paysignal error."""

    def __reduce__(self) -> tuple[object, ...]:
        # picklable whatever the subclass's __init__ takes (errors cross process pools)
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[PaysignalError], args: tuple[object, ...],
             state: dict[str, object]) -> PaysignalError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ValidationError(PaysignalError, ValueError):
    """Bad input: names the offending field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class InvalidTransitionError(PaysignalError):
    """A payment was asked to move along an edge the state machine does not have."""

    def __init__(self, payment_id: str, from_state: str, to_state: str) -> None:
        self.payment_id = payment_id
        self.from_state = from_state
        self.to_state = to_state
        super().__init__(
            f"payment {payment_id}: transition {from_state} -> {to_state} is not allowed"
        )


class AmountExceedsAvailableError(PaysignalError):
    """A capture or refund asked for more than is available on the payment."""

    def __init__(self, field: str, requested: int, available: int) -> None:
        self.field = field
        self.requested = requested
        self.available = available
        super().__init__(
            f"{field}: requested {requested} minor units but only {available} are available"
        )


class PaymentNotFoundError(PaysignalError):
    def __init__(self, payment_id: str) -> None:
        self.payment_id = payment_id
        super().__init__(f"payment {payment_id} not found")


class IdempotencyError(PaysignalError):
    """Base class of the Idempotency-Key protocol errors."""


class IdempotencyKeyConflictError(IdempotencyError):
    """The key was used before with a different request."""

    def __init__(self, key: str, differing_fields: list[str]) -> None:
        self.key = key
        self.differing_fields = differing_fields
        fields = ", ".join(differing_fields) or "operation"
        super().__init__(
            f"Idempotency-Key {key!r} was already used with a different request "
            f"(differs in: {fields})"
        )


class IdempotencyKeyInProgressError(IdempotencyError):
    """The first request with this key is still running; retry later."""

    def __init__(self, key: str, retry_after_s: float) -> None:
        self.key = key
        self.retry_after_s = retry_after_s
        super().__init__(
            f"a request with Idempotency-Key {key!r} is still in progress; "
            f"retry after {retry_after_s:.1f}s"
        )


class UnknownOutcomeUnresolvedError(PaysignalError):
    """An operation needs a settled payment but the provider cannot say what happened yet."""

    def __init__(self, payment_id: str) -> None:
        self.payment_id = payment_id
        super().__init__(
            f"payment {payment_id} has an unknown provider outcome that could not be "
            "resolved yet; no new operation is allowed until it is"
        )


class ProviderNotFoundError(ValidationError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__("provider", f"unknown provider {name!r} (known: {', '.join(known)})")


class SchemaOutOfDateError(PaysignalError):
    def __init__(self, current: str | None, head: str) -> None:
        self.current = current
        self.head = head
        super().__init__(
            f"the database schema is at revision {current or 'none'} but this version of "
            f"paysignal needs {head}; run `paysignal db upgrade` to apply the migrations"
        )


class ConfigurationError(PaysignalError):
    """A setting is missing or has a value paysignal cannot use."""


class LedgerImbalanceError(PaysignalError):
    def __init__(self, currency: str, debits: int, credits: int) -> None:
        super().__init__(
            f"journal transaction in {currency} does not balance: "
            f"debits {debits} != credits {credits}"
        )
