"""The recovery points of the idempotency protocol, declared once.

An idempotency record stores the last point its request committed; the payment row (its pending
operation) says the rest. A process killed anywhere is resumed from the stored point, asking the
provider before calling it again, so a crash never charges twice. The `*_PROVIDER_RETURNED`
points are never stored: they name the moment between a provider's answer and the commit that
records it, which is where crash tests kill the process."""

from __future__ import annotations

from enum import StrEnum

from engine.domain.operations import Operation


class RecoveryPoint(StrEnum):
    # The key is claimed and nothing else is written yet.
    STARTED = "started"
    # The payment is written with an authorization pending; the provider may not have seen it.
    AUTHORIZE_REQUESTED = "authorize_requested"
    # The provider answered the authorization; the answer is not committed yet.
    AUTHORIZE_PROVIDER_RETURNED = "authorize_provider_returned"
    # A capture is pending: asked for by the client, or begun by the automatic-capture policy.
    CAPTURE_REQUESTED = "capture_requested"
    # The provider answered the capture; the answer is not committed yet.
    CAPTURE_PROVIDER_RETURNED = "capture_provider_returned"
    # A void is pending.
    VOID_REQUESTED = "void_requested"
    # The provider answered the void; the answer is not committed yet.
    VOID_PROVIDER_RETURNED = "void_provider_returned"
    # A refund is pending.
    REFUND_REQUESTED = "refund_requested"
    # The provider answered the refund; the answer is not committed yet.
    REFUND_PROVIDER_RETURNED = "refund_provider_returned"
    # The response is stored with the key: a retry replays it byte for byte.
    FINISHED = "finished"

    @staticmethod
    def requested(operation: Operation) -> RecoveryPoint:
        return _REQUESTED[operation]

    @staticmethod
    def provider_returned(operation: Operation) -> RecoveryPoint:
        return _PROVIDER_RETURNED[operation]


_REQUESTED = {
    Operation.AUTHORIZE: RecoveryPoint.AUTHORIZE_REQUESTED,
    Operation.CAPTURE: RecoveryPoint.CAPTURE_REQUESTED,
    Operation.VOID: RecoveryPoint.VOID_REQUESTED,
    Operation.REFUND: RecoveryPoint.REFUND_REQUESTED,
}
_PROVIDER_RETURNED = {
    Operation.AUTHORIZE: RecoveryPoint.AUTHORIZE_PROVIDER_RETURNED,
    Operation.CAPTURE: RecoveryPoint.CAPTURE_PROVIDER_RETURNED,
    Operation.VOID: RecoveryPoint.VOID_PROVIDER_RETURNED,
    Operation.REFUND: RecoveryPoint.REFUND_PROVIDER_RETURNED,
}

# The points a new automatic-capture payment passes, in order (crash tests kill at each): the
# provider authorizes and captures in one call, so two durable phases.
AUTOMATIC_CAPTURE_PATH = (
    RecoveryPoint.AUTHORIZE_REQUESTED, RecoveryPoint.AUTHORIZE_PROVIDER_RETURNED,
    RecoveryPoint.FINISHED,
)
