"""Named dashboard accounts: each person logs in as themselves (scrypt-hashed password), so the
audit trail names who changed what; failed logins are rate-limited per account name."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from dashboard.auth import LoginError, User, parse_roles
from engine.exceptions import PaysignalError, ValidationError
from engine.secrets import looks_like_example
from engine.storage.tables import dashboard_accounts, dashboard_login_failures

MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
# Compared against when the name is unknown, so a wrong name costs as much as a wrong password.
_DECOY = "scrypt$" + "00" * 16 + "$" + "00" * 32


class AccountNotFoundError(PaysignalError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no active dashboard account named {name!r}")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _matches(password: str, stored: str) -> bool:
    _scheme, salt, digest = stored.split("$")
    computed = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(computed.hex(), digest)


def create_account(engine: Engine, name: str, password: str, roles: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError("name", "must be 1 to 64 letters, digits, '.', '_', '@' or '-'")
    granted = parse_roles(roles, "roles")
    if not granted:
        raise ValidationError("roles", "give at least one of finance, engineering, viewer")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if looks_like_example(password):
        raise ValidationError("password", "must not be an example value")
    try:
        with engine.begin() as conn:
            conn.execute(insert(dashboard_accounts).values(
                name=name, password_hash=hash_password(password),
                roles=",".join(sorted(r.value for r in granted)), created_at=datetime.now(UTC)))
    except IntegrityError:
        raise ValidationError("name", f"a dashboard account named {name!r} already exists") \
            from None


def disable_account(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        done = conn.execute(update(dashboard_accounts).where(
            dashboard_accounts.c.name == name, dashboard_accounts.c.disabled_at.is_(None)
        ).values(disabled_at=datetime.now(UTC))).rowcount
    if not done:
        raise AccountNotFoundError(name)


def list_accounts(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(dashboard_accounts.c.name, dashboard_accounts.c.roles,
                                   dashboard_accounts.c.created_at,
                                   dashboard_accounts.c.disabled_at)
                            .order_by(dashboard_accounts.c.name))
        return [dict(r._mapping) for r in rows]


def has_accounts(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(select(func.count()).select_from(dashboard_accounts).where(
            dashboard_accounts.c.disabled_at.is_(None))).scalar_one())


def log_in(engine: Engine, name: str, password: str, now: datetime | None = None) -> User:
    """The account's user, or LoginError. After MAX_FAILURES failed logins for a name within
    FAILURE_WINDOW, that name is refused until the window has passed."""
    now = now or datetime.now(UTC)
    name = name.strip()[:64]
    if not name or not password:
        raise LoginError("enter your account name and password")
    since = now - FAILURE_WINDOW
    with engine.connect() as conn:
        failures = conn.execute(select(func.count()).select_from(dashboard_login_failures).where(
            dashboard_login_failures.c.name == name,
            dashboard_login_failures.c.at > since)).scalar_one()
        account = conn.execute(select(dashboard_accounts).where(
            dashboard_accounts.c.name == name,
            dashboard_accounts.c.disabled_at.is_(None))).first()
    if failures >= MAX_FAILURES:
        raise LoginError(f"{name}: too many failed logins; try again in "
                         f"{int(FAILURE_WINDOW.total_seconds() // 60)} minutes")
    if not _matches(password, account.password_hash if account else _DECOY) or account is None:
        with engine.begin() as conn:
            conn.execute(delete(dashboard_login_failures).where(
                dashboard_login_failures.c.at <= since))
            conn.execute(insert(dashboard_login_failures).values(name=name, at=now))
        raise LoginError("name or password: not a dashboard account")
    return User(account.name, parse_roles(account.roles, "roles"), "password")
