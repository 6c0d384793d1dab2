"""Operators of the admin API. Each has a named token, shown once and stored hashed, so the audit
trail of a toggle change or a silence names the token's holder, not a self-declared actor."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.exceptions import PaysignalError, ValidationError
from engine.payments.merchants import hash_api_key
from engine.storage.tables import admin_tokens

TOKEN_PREFIX = "pat_"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")


class AdminNotFoundError(PaysignalError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no active admin named {name!r}")


@dataclass(frozen=True, slots=True)
class NewAdmin:
    name: str
    token: str  # shown once, never stored


def create_admin(engine: Engine, name: str) -> NewAdmin:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError("name", "must be 1 to 64 lower-case letters, digits, '.', '_', "
                                      "'@' or '-' (for example ana or ana@example.com)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with engine.begin() as conn:
            conn.execute(insert(admin_tokens).values(
                name=name, token_hash=hash_api_key(token), created_at=datetime.now(UTC)))
    except IntegrityError:
        raise ValidationError("name", f"an admin named {name!r} already exists") from None
    return NewAdmin(name, token)


def revoke_admin(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        done = conn.execute(update(admin_tokens).where(
            admin_tokens.c.name == name, admin_tokens.c.revoked_at.is_(None)).values(
            revoked_at=datetime.now(UTC))).rowcount
    if not done:
        raise AdminNotFoundError(name)


def list_admins(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(select(admin_tokens.c.name, admin_tokens.c.created_at,
                                   admin_tokens.c.revoked_at).order_by(admin_tokens.c.name))
        return [dict(r._mapping) for r in rows]


def authenticate_admin(engine: Engine, token: str) -> str | None:
    """The admin's name for an active token, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    with engine.connect() as conn:
        return conn.execute(select(admin_tokens.c.name).where(
            admin_tokens.c.token_hash == hash_api_key(token),
            admin_tokens.c.revoked_at.is_(None))).scalar()
