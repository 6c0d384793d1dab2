"""RFC 9457 problem details: every error the API returns, with a stable type."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from engine.exceptions import (
    AmountExceedsAvailableError,
    IdempotencyKeyConflictError,
    IdempotencyKeyInProgressError,
    InvalidTransitionError,
    PaymentNotFoundError,
    SchemaOutOfDateError,
    UnknownOutcomeUnresolvedError,
    ValidationError,
)
from engine.storage.repository import ConcurrentUpdateError, LockLostError

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:paysignal:problem:"

# slug -> (status, title): the stable problem types clients may branch on.
PROBLEM_TYPES: dict[str, tuple[int, str]] = {
    "validation-error": (400, "The request is not valid"),
    "idempotency-key-missing": (400, "Idempotency-Key header is required"),
    "unauthorized": (401, "Missing or invalid API key"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "idempotency-key-in-use": (409, "A request with this Idempotency-Key is in progress"),
    "invalid-state-transition": (409, "The payment's state does not allow this operation"),
    "payment-outcome-unknown": (409, "The provider has not told us what happened yet"),
    "concurrent-update": (409, "The payment was changed by another request"),
    "request-too-large": (413, "Request body too large"),
    "unsupported-media-type": (415, "Request body must be JSON"),
    "too-many-requests": (429, "Too many requests; retry after the time given"),
    "idempotency-key-reused": (422, "Idempotency-Key was used with a different request"),
    "service-unavailable": (503, "The service cannot handle the request right now"),
    "internal-error": (500, "Internal error"),
}


def problem_types_markdown() -> str:
    """The docs' table of problem types, from PROBLEM_TYPES."""
    rows = ["| status | `type` (after `urn:paysignal:problem:`) | meaning |", "|---|---|---|"]
    rows += [f"| {status} | `{slug}` | {title} |"
             for slug, (status, title) in sorted(PROBLEM_TYPES.items(),
                                                 key=lambda kv: (kv[1][0], kv[0]))]
    return "\n".join(rows)


def problem(slug: str, detail: str, *, errors: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    status, title = PROBLEM_TYPES[slug]
    body: dict[str, Any] = {"type": TYPE_PREFIX + slug, "title": title, "status": status,
                            "detail": detail, **extra}
    if errors:
        body["errors"] = errors
    return Response(json.dumps(body), status_code=status, media_type=PROBLEM_JSON,
                    headers=headers)


def problem_for(exc: Exception) -> Response | None:
    """The problem response for an engine error, or None if it is not one we know."""
    if isinstance(exc, IdempotencyKeyConflictError):
        return problem("idempotency-key-reused", str(exc), differing_fields=exc.differing_fields)
    if isinstance(exc, IdempotencyKeyInProgressError):
        return problem("idempotency-key-in-use", str(exc),
                       headers={"Retry-After": str(max(1, round(exc.retry_after_s)))})
    if isinstance(exc, AmountExceedsAvailableError):
        return problem("validation-error", str(exc),
                       errors=[{"field": exc.field, "reason": str(exc).split(": ", 1)[1]}])
    if isinstance(exc, ValidationError):
        return problem("validation-error", str(exc),
                       errors=[{"field": exc.field, "reason": exc.reason}])
    if isinstance(exc, PaymentNotFoundError):
        return problem("not-found", "no such payment")
    if isinstance(exc, InvalidTransitionError):
        return problem("invalid-state-transition",
                       f"the payment is {exc.from_state}; it cannot move to {exc.to_state}")
    if isinstance(exc, UnknownOutcomeUnresolvedError):
        return problem("payment-outcome-unknown", str(exc), headers={"Retry-After": "30"})
    if isinstance(exc, (ConcurrentUpdateError, LockLostError)):
        return problem("concurrent-update", str(exc), headers={"Retry-After": "1"})
    if isinstance(exc, SchemaOutOfDateError):
        return problem("service-unavailable", str(exc))
    return None
