"""Who is calling: a merchant (API key), an operator (admin token), and the Idempotency-Key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from engine.api.errors import MissingIdempotencyKeyError, UnauthorizedError
from engine.payments.admins import authenticate_admin
from engine.payments.merchants import authenticate
from engine.payments.validation import MAX_KEY_LENGTH

bearer = HTTPBearer(auto_error=False, description="The merchant's API key")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _bearer_identity(authenticate_token: Callable[[str], str | None]) -> Callable[..., str]:
    """A dependency returning whoever the bearer token identifies, or 401."""

    def identity(credentials: Credentials = None) -> str:
        token = credentials.credentials.strip() if credentials else ""
        who = authenticate_token(token) if token else None
        if who is None:
            raise UnauthorizedError
        return who

    return identity


def merchant_dependency(engine: Engine) -> Callable[..., str]:
    """A dependency returning the calling merchant's id."""
    return _bearer_identity(lambda token: authenticate(engine, token))


def admin_dependency(engine: Engine) -> Callable[..., str]:
    """A dependency returning the calling admin's name (`paysignal admins create NAME` gives each
    operator a token of their own; a revoked token is refused)."""
    return _bearer_identity(lambda token: authenticate_admin(engine, token))


async def idempotency_key(key: Annotated[str, Header(
        alias="Idempotency-Key", min_length=1, max_length=MAX_KEY_LENGTH,
        description="Unique per operation; a retry with the same key replays the result")],
                          ) -> str:
    """Checked on the event loop (async): a plain check needs no trip to a worker thread."""
    if not key.strip():
        raise MissingIdempotencyKeyError
    return key


IdempotencyKey = Annotated[str, Depends(idempotency_key)]
