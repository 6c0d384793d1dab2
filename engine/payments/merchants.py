"""Merchants and their API keys. A key is shown once; only its SHA-256 hash is stored. A
merchant may hold several keys while rotating: the new one works at once, the old ones until
their overlap ends; a revoked key stops at once."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, and_, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from engine.exceptions import PaysignalError, ValidationError
from engine.storage.repository import utc
from engine.storage.tables import merchant_keys, merchants

KEY_PREFIX = "psk_"
MAX_OVERLAP = timedelta(days=30)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}$")


class MerchantNotFoundError(PaysignalError):
    def __init__(self, merchant: str) -> None:
        super().__init__(f"no merchant {merchant!r} (give its id or its name)")


class MerchantKeyNotFoundError(PaysignalError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"no active key {key_id!r} for this merchant")


@dataclass(frozen=True, slots=True)
class NewMerchant:
    merchant_id: str
    name: str
    api_key: str  # shown once, never stored
    key_id: str = ""


def hash_api_key(api_key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching).
    return hashlib.sha256(api_key.encode()).hexdigest()


def _new_key(conn: Connection, merchant_id: str, now: datetime) -> tuple[str, str]:
    key_id, api_key = f"key_{secrets.token_hex(8)}", KEY_PREFIX + secrets.token_urlsafe(32)
    conn.execute(insert(merchant_keys).values(id=key_id, merchant_id=merchant_id,
                                              key_hash=hash_api_key(api_key), created_at=now))
    return key_id, api_key


def create_merchant(engine: Engine, name: str) -> NewMerchant:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError("name", "must be 1 to 128 letters, digits, spaces, '.', '_' or '-'")
    merchant_id, now = f"mer_{secrets.token_hex(12)}", datetime.now(UTC)
    try:
        with engine.begin() as conn:
            conn.execute(insert(merchants).values(id=merchant_id, name=name, created_at=now))
            key_id, api_key = _new_key(conn, merchant_id, now)
    except IntegrityError:
        raise ValidationError("name", f"a merchant named {name!r} already exists") from None
    return NewMerchant(merchant_id, name, api_key, key_id)


def _merchant_id(conn: Connection, merchant: str) -> str:
    found = conn.execute(select(merchants.c.id).where(
        or_(merchants.c.id == merchant, merchants.c.name == merchant))).scalar()
    if found is None:
        raise MerchantNotFoundError(merchant)
    return str(found)


def rotate_key(engine: Engine, merchant: str, overlap: timedelta) -> NewMerchant:
    """A new key that works at once; the merchant's other active keys keep working for
    `overlap` (at most 30 days), so clients can switch without an outage."""
    if overlap < timedelta(0) or overlap > MAX_OVERLAP:
        raise ValidationError("overlap", "must be between 0 and 30 days")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        merchant_id = _merchant_id(conn, merchant)
        ending = now + overlap
        conn.execute(update(merchant_keys).where(
            merchant_keys.c.merchant_id == merchant_id, merchant_keys.c.revoked_at.is_(None),
            or_(merchant_keys.c.expires_at.is_(None), merchant_keys.c.expires_at > ending),
        ).values(expires_at=ending))
        key_id, api_key = _new_key(conn, merchant_id, now)
        name = conn.execute(select(merchants.c.name).where(
            merchants.c.id == merchant_id)).scalar_one()
    return NewMerchant(merchant_id, name, api_key, key_id)


def revoke_key(engine: Engine, merchant: str, key_id: str) -> None:
    """Stop one key at once."""
    with engine.begin() as conn:
        merchant_id = _merchant_id(conn, merchant)
        done = conn.execute(update(merchant_keys).where(
            merchant_keys.c.id == key_id, merchant_keys.c.merchant_id == merchant_id,
            merchant_keys.c.revoked_at.is_(None)).values(revoked_at=datetime.now(UTC))).rowcount
    if not done:
        raise MerchantKeyNotFoundError(key_id)


def list_keys(engine: Engine, merchant: str) -> list[dict[str, object]]:
    with engine.connect() as conn:
        merchant_id = _merchant_id(conn, merchant)
        rows = conn.execute(select(merchant_keys.c.id, merchant_keys.c.created_at,
                                   merchant_keys.c.expires_at, merchant_keys.c.revoked_at)
                            .where(merchant_keys.c.merchant_id == merchant_id)
                            .order_by(merchant_keys.c.created_at))
        return [dict(r._mapping) for r in rows]


def list_merchants(engine: Engine, now: datetime | None = None) -> list[dict[str, object]]:
    """Every merchant with how many of its API keys work now (not revoked, not expired)."""
    now = now or datetime.now(UTC)
    k = merchant_keys.c
    working = func.sum(case((and_(k.revoked_at.is_(None),
                                  or_(k.expires_at.is_(None), k.expires_at > now)), 1),
                            else_=0))
    with engine.connect() as conn:
        rows = conn.execute(select(merchants.c.id, merchants.c.name, merchants.c.created_at,
                                   func.count(k.id).label("keys"), working.label("working_keys"))
                            .select_from(merchants.outerjoin(merchant_keys,
                                                             k.merchant_id == merchants.c.id))
                            .group_by(merchants.c.id, merchants.c.name, merchants.c.created_at)
                            .order_by(merchants.c.name))
        return [{**r._mapping, "created_at": utc(r.created_at),
                 "working_keys": int(r.working_keys or 0)} for r in rows]


def authenticate(engine: Engine, api_key: str, now: datetime | None = None) -> str | None:
    """The merchant id for an active API key, or None."""
    if not api_key.startswith(KEY_PREFIX):
        return None
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        return conn.execute(select(merchant_keys.c.merchant_id).where(
            merchant_keys.c.key_hash == hash_api_key(api_key),
            merchant_keys.c.revoked_at.is_(None),
            or_(merchant_keys.c.expires_at.is_(None), merchant_keys.c.expires_at > now),
        )).scalar()
