"""Who is using the dashboard and what they may change.

Login is Streamlit's OIDC (`st.login`, when `[auth]` is in the Streamlit secrets) or, otherwise,
passwords from the environment, one per role. Without either, only a local user on 127.0.0.1
can reach the dashboard (see `check_bind`), with the roles in PAYSIGNAL_DASHBOARD_LOCAL_ROLES.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import tomllib
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

PASSWORD_ENV = {role: f"PAYSIGNAL_DASHBOARD_PASSWORD_{role.value.upper()}" for role in Role}
ROLES_ENV = "PAYSIGNAL_DASHBOARD_ROLES"
LOCAL_ROLES_ENV = "PAYSIGNAL_DASHBOARD_LOCAL_ROLES"
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


def password_roles_configured(env: dict[str, str] | None = None) -> list[Role]:
    env = dict(os.environ) if env is None else env
    return [role for role, name in PASSWORD_ENV.items() if env.get(name)]


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


def login_configured(env: dict[str, str] | None = None, paths: list[Path] | None = None) -> bool:
    return bool(password_roles_configured(env)) or oidc_configured(paths)


def check_password(name: str, password: str, env: dict[str, str] | None = None) -> User:
    """The role whose password this is; constant-time comparison against each."""
    env = dict(os.environ) if env is None else env
    name = name.strip()
    if not name:
        raise LoginError("name: enter who you are (your writes are audited under it)")
    if len(name) > 64 or any(not (c.isalnum() or c in " .-_@") for c in name):
        raise LoginError("name: use at most 64 letters, digits, spaces or . - _ @")
    matched = [role for role, var in PASSWORD_ENV.items()
               if env.get(var) and hmac.compare_digest(env[var].encode(), password.encode())]
    if not matched:
        raise LoginError("password: not the password of any role")
    return User(name, frozenset(matched), "password")


def oidc_user(email: str, env: dict[str, str] | None = None) -> User:
    """Roles of a signed-in OIDC user from PAYSIGNAL_DASHBOARD_ROLES
    ("alice@example.com=finance;bob@example.com=engineering,finance"); others are viewers."""
    env = dict(os.environ) if env is None else env
    roles: frozenset[Role] = frozenset({Role.VIEWER})
    for entry in (e.strip() for e in env.get(ROLES_ENV, "").split(";")):
        if not entry:
            continue
        who, sep, granted = entry.partition("=")
        if not sep:
            raise LoginError(f"{ROLES_ENV}: {entry!r} is not email=role[,role]")
        if who.strip().lower() == email.lower():
            roles = parse_roles(granted, ROLES_ENV) or roles
    return User(email, roles, "oidc")


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
            f"refusing to listen on {address or 'all interfaces'} without a login: configure "
            f"{PASSWORD_ENV[Role.VIEWER]} (and the other role passwords) or OIDC (an auth "
            "section in .streamlit/secrets.toml), or listen on 127.0.0.1")
