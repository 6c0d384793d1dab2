"""Provider configuration from the environment: base URLs, credentials, webhook secrets and
time-outs. A secret is read from `NAME`, or from the file `NAME_FILE` names (Docker and
Kubernetes secrets); it is never logged, and `describe` shows only whether it is set."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from engine.exceptions import ConfigurationError
from engine.providers.wire import Timeouts


def webhook_secret_variable(provider: str) -> str:
    return f"PAYSIGNAL_WEBHOOK_SECRET_{provider.upper()}"


def webhook_secrets(provider: str, env: Mapping[str, str] | None = None) -> list[str]:
    """PAYSIGNAL_WEBHOOK_SECRET_<PROVIDER>: one secret, or two separated by a comma while a
    rotation is under way (the new one first). There is no default."""
    raw = env_secret(webhook_secret_variable(provider), env) or ""
    return [s.strip() for s in raw.split(",") if s.strip()]


def env_secret(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """`NAME`, or the contents of the file `NAME_FILE` (trailing newline dropped), from `env`
    (default: the process environment)."""
    env = os.environ if env is None else env
    value = env.get(name)
    if value:
        return value
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().rstrip("\r\n") or None
    except OSError as exc:
        raise ConfigurationError(f"{name}_FILE: cannot read {path!r} ({exc.strerror})") from None


def base_url(provider: str, default: str, env: Mapping[str, str] | None = None) -> str:
    """PAYSIGNAL_<PROVIDER>_BASE_URL, else the provider's real host."""
    env = os.environ if env is None else env
    value = env.get(f"PAYSIGNAL_{provider.upper()}_BASE_URL", default).rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ConfigurationError(f"PAYSIGNAL_{provider.upper()}_BASE_URL: {value!r} is not an "
                                 "http(s) URL")
    return value


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a connector sends its requests and how long it waits."""

    base_url: str
    timeouts: Timeouts

    @classmethod
    def from_environment(cls, provider: str, default_url: str,
                         env: Mapping[str, str] | None = None) -> Endpoint:
        return cls(base_url(provider, default_url, env),
                   Timeouts.from_environment(provider, env))
