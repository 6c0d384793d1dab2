"""Secrets the processes need before they may start: set, long enough, and not an example."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.engine import make_url

from engine.providers.config import env_secret
from engine.providers.registry import PROVIDERS, enabled_providers, provider_names

MIN_SECRET_LENGTH = 24
_EXAMPLES = ("change-me", "changeme", "whsec_dev_", "example")
GENERATE_HINT = "generate one with: python3 -c 'import secrets; print(secrets.token_hex(32))'"


def looks_like_example(value: str) -> bool:
    return any(marker in value.lower() for marker in _EXAMPLES)


def secret_problem(variable: str, value: str) -> str | None:
    """Why `value` cannot be used as `variable`, or None if it can."""
    if not value:
        return f"{variable}: is not set"
    if looks_like_example(value):
        return f"{variable}: still holds an example value"
    if len(value) < MIN_SECRET_LENGTH:
        return f"{variable}: must be at least {MIN_SECRET_LENGTH} characters"
    return None


def startup_problems(providers: Iterable[str] | None = None,
                     database_url: str | None = None) -> list[str]:
    """Every reason the API or the worker must not start: no provider enabled, an enabled
    provider without what verifies its notifications (webhook secrets: one, or two during a
    rotation; PayPal's webhook id), and a database password left at an example."""
    problems: list[str] = []
    password = make_url(database_url).password if database_url else None
    if password and looks_like_example(str(password)):
        problems.append("PAYSIGNAL_DATABASE_URL: its password still holds an example value")
    enabled = list(enabled_providers() if providers is None else providers)
    if not enabled:
        variables = ", ".join(v for n in provider_names() for v in PROVIDERS[n].credentials)
        problems.append(f"no provider is configured: set the credentials of at least one "
                        f"({variables}), or point them at `paysignal sandbox serve`")
    for provider in enabled:
        spec = PROVIDERS[provider]
        variable = spec.webhook_variable
        raw = env_secret(variable) or ""
        if not spec.webhook_is_secret:
            if not raw:
                problems.append(f"{variable}: is not set ({provider}'s notifications cannot "
                                "be verified without it)")
            continue
        values = [s.strip() for s in raw.split(",") if s.strip()] or [""]
        if len(values) > 2:
            problems.append(f"{variable}: at most two secrets (new,previous) during a rotation")
        problems += [p for p in (secret_problem(variable, v) for v in values) if p]
    return problems


def disabled_providers() -> list[str]:
    """Providers without credentials: not called, and said so at start-up."""
    enabled = set(enabled_providers())
    return [n for n in provider_names() if n not in enabled]
