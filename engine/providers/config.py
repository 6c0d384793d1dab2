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


MAX_FEE_BPS = 10_000
MAX_FEE_FIXED_MINOR = 100_000


@dataclass(frozen=True, slots=True)
class Pricing:
    """A provider's price for card payments as configured: basis points of the amount plus a
    fixed fee in minor units; on a refund some providers return the percentage part."""

    bps: int
    fixed_minor: int
    dispute_fee_minor: int = 0
    refund_returns_percentage: bool = False

    def capture_fee(self, amount_minor: int) -> int:
        return amount_minor * self.bps // 10_000 + self.fixed_minor

    def refund_fee(self, amount_minor: int) -> int:
        """The fee on a refund: negative when part of the original fee comes back."""
        return -(amount_minor * self.bps // 10_000) if self.refund_returns_percentage else 0

    @classmethod
    def from_environment(cls, provider: str, default: Pricing,
                         env: Mapping[str, str] | None = None) -> Pricing:
        """PAYSIGNAL_<PROVIDER>_FEE_BPS, _FEE_FIXED_MINOR and _DISPUTE_FEE_MINOR override the
        provider's published price (a negotiated rate)."""
        env = os.environ if env is None else env
        prefix = f"PAYSIGNAL_{provider.upper()}_"

        def number(name: str, fallback: int, limit: int) -> int:
            raw = env.get(prefix + name, "").strip()
            if not raw:
                return fallback
            if not raw.isdigit() or int(raw) > limit:
                raise ConfigurationError(f"{prefix}{name}={raw!r}: must be a whole number from "
                                         f"0 to {limit}")
            return int(raw)

        return cls(number("FEE_BPS", default.bps, MAX_FEE_BPS),
                   number("FEE_FIXED_MINOR", default.fixed_minor, MAX_FEE_FIXED_MINOR),
                   number("DISPUTE_FEE_MINOR", default.dispute_fee_minor, MAX_FEE_FIXED_MINOR),
                   default.refund_returns_percentage)
