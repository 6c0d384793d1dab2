"""Who is using the dashboard and what they may change.

Login is Streamlit's OIDC (`st.login`, when `[auth]` is in the Streamlit secrets) or, otherwise,
named accounts (`paysignal users add`, dashboard/accounts.py). Without either, only a local user
on 127.0.0.1 can reach the dashboard (see `check_bind`), with the roles in
PAYSIGNAL_DASHBOARD_LOCAL_ROLES.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from engine.exceptions import PaysignalError


class Role(StrEnum):
    FINANCE = "finance"
    ENGINEERING = "engineering"
    VIEWER = "viewer"


class Action(StrEnum):
    WORK_BREAKS = "work reconciliation breaks"
    SIGN_OFF = "sign off reconciliation checkpoints"
    SILENCE_ALERTS = "silence alerts"
    SET_TOGGLES = "change rollout toggles"


# The one table of who may do what; viewers only read.
PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.FINANCE: frozenset({Action.WORK_BREAKS, Action.SIGN_OFF}),
    Role.ENGINEERING: frozenset({Action.SILENCE_ALERTS, Action.SET_TOGGLES}),
    Role.VIEWER: frozenset(),
}

ROLES_ENV = "PAYSIGNAL_DASHBOARD_ROLES"
LOCAL_ROLES_ENV = "PAYSIGNAL_DASHBOARD_LOCAL_ROLES"
ALLOWED_DOMAINS_ENV = "PAYSIGNAL_DASHBOARD_ALLOWED_DOMAINS"
DEFAULT_LOCAL_ROLES = "finance,engineering"


class PermissionDeniedError(PaysignalError):
    def __init__(self, user: User, action: Action) -> None:
        allowed = [r.value for r, acts in PERMISSIONS.items() if action in acts]
        super().__init__(f"{user.name} ({', '.join(r.value for r in user.roles) or 'no role'}) "
                         f"may not {action.value}: that needs the {' or '.join(allowed)} role")


class LoginError(PaysignalError):
    pass


class BindRefusedError(PaysignalError):
    pass


@dataclass(frozen=True)
class User:
    name: str
    roles: frozenset[Role]
    via: str  # password | oidc | local

    def may(self, action: Action) -> bool:
        return any(action in PERMISSIONS[r] for r in self.roles)

    def require(self, action: Action) -> None:
        if not self.may(action):
            raise PermissionDeniedError(self, action)

    @property
    def actor(self) -> str:
        """How writes are audited."""
        return f"{self.name} (dashboard, {self.via})"


def parse_roles(text: str, field: str) -> frozenset[Role]:
    roles = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            roles.add(Role(part))
        except ValueError:
            raise LoginError(f"{field}: {part!r} is not a role "
                             f"(use {', '.join(r.value for r in Role)})") from None
    return frozenset(roles)


def secrets_paths(cwd: Path | None = None) -> list[Path]:
    """Where Streamlit looks for secrets.toml (global, then the project)."""
    return [Path.home() / ".streamlit" / "secrets.toml",
            (cwd or Path.cwd()) / ".streamlit" / "secrets.toml"]


def oidc_configured(paths: list[Path] | None = None) -> bool:
    for path in paths if paths is not None else secrets_paths():
        try:
            if "auth" in tomllib.loads(path.read_text()):
                return True
        except FileNotFoundError:
            continue
        except tomllib.TOMLDecodeError as exc:
            raise LoginError(f"{path}: not valid TOML ({exc})") from None
    return False


def login_configured(accounts_exist: bool, paths: list[Path] | None = None) -> bool:
    """Whether anyone must log in: named accounts exist, or OIDC is configured."""
    return accounts_exist or oidc_configured(paths)


def oidc_user(claims: Mapping[str, object], env: dict[str, str] | None = None) -> User:
    """The user an identity provider signed in, denied by default. Only a verified e-mail
    counts (never the opaque `sub`). Accounts listed in PAYSIGNAL_DASHBOARD_ROLES
    ("alice@example.com=finance;bob@example.com=engineering,finance") get those roles; accounts
    of a domain in PAYSIGNAL_DASHBOARD_ALLOWED_DOMAINS ("example.com,example.org") may view;
    everyone else is refused."""
    env = dict(os.environ) if env is None else env
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise LoginError("the identity provider sent no e-mail address for this account")
    if claims.get("email_verified") is not True:
        raise LoginError(f"{email}: the identity provider has not verified this e-mail address")
    for entry in (e.strip() for e in env.get(ROLES_ENV, "").split(";")):
        if not entry:
            continue
        who, sep, granted = entry.partition("=")
        if not sep:
            raise LoginError(f"{ROLES_ENV}: {entry!r} is not email=role[,role]")
        if who.strip().lower() == email.lower():
            return User(email, parse_roles(granted, ROLES_ENV) or frozenset({Role.VIEWER}), "oidc")
    domains = {d.strip().lower().lstrip("@") for d in env.get(ALLOWED_DOMAINS_ENV, "").split(",")}
    if email.rsplit("@", 1)[1].lower() in domains - {""}:
        return User(email, frozenset({Role.VIEWER}), "oidc")
    raise LoginError(f"{email}: not allowed on this dashboard (ask for an entry in {ROLES_ENV} "
                     f"or {ALLOWED_DOMAINS_ENV})")


def local_user(env: dict[str, str] | None = None) -> User:
    env = dict(os.environ) if env is None else env
    roles = parse_roles(env.get(LOCAL_ROLES_ENV, DEFAULT_LOCAL_ROLES), LOCAL_ROLES_ENV)
    return User(env.get("USER") or "local", roles, "local")


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_bind(address: str | None, login: bool) -> None:
    """Without a login, only loopback: anyone who can reach the port could work breaks."""
    if login:
        return
    if not address or not is_loopback(address):
        raise BindRefusedError(
            f"refusing to listen on {address or 'all interfaces'} without a login: create "
            "dashboard accounts (paysignal users add NAME --roles ROLES) or configure OIDC (an "
            "auth section in .streamlit/secrets.toml), or listen on 127.0.0.1")
