"""Merchants and their API keys. A key is shown once; only its SHA-256 hash is stored."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from engine.exceptions import ValidationError
from engine.storage.tables import merchants

KEY_PREFIX = "psk_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class NewMerchant:
    merchant_id: str
    name: str
    api_key: str  # shown once, never stored


def hash_api_key(api_key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching).
    return hashlib.sha256(api_key.encode()).hexdigest()


def create_merchant(engine: Engine, name: str) -> NewMerchant:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError("name", "must be 1 to 128 letters, digits, spaces, '.', '_' or '-'")
    merchant_id = f"mer_{secrets.token_hex(12)}"
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    try:
        with engine.begin() as conn:
            conn.execute(insert(merchants).values(
                id=merchant_id, name=name, api_key_hash=hash_api_key(api_key),
                created_at=datetime.now(UTC)))
    except IntegrityError:
        raise ValidationError("name", f"a merchant named {name!r} already exists") from None
    return NewMerchant(merchant_id, name, api_key)


def authenticate(engine: Engine, api_key: str) -> str | None:
    """The merchant id for an API key, or None."""
    if not api_key.startswith(KEY_PREFIX):
        return None
    with engine.connect() as conn:
        return conn.execute(select(merchants.c.id).where(
            merchants.c.api_key_hash == hash_api_key(api_key))).scalar()
