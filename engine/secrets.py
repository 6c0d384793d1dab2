"""Secrets the processes need before they may start: set, long enough, and not an example."""

from __future__ import annotations

import os
from collections.abc import Iterable

from engine.providers.simulated import webhook_secret_variable, webhook_secrets

MIN_SECRET_LENGTH = 24
_EXAMPLES = ("change-me", "changeme", "whsec_dev_", "example")
GENERATE_HINT = "generate one with: python3 -c 'import secrets; print(secrets.token_hex(32))'"


def secret_problem(variable: str, value: str) -> str | None:
    """Why `value` cannot be used as `variable`, or None if it can."""
    if not value:
        return f"{variable}: is not set"
    if any(marker in value.lower() for marker in _EXAMPLES):
        return f"{variable}: still holds an example value"
    if len(value) < MIN_SECRET_LENGTH:
        return f"{variable}: must be at least {MIN_SECRET_LENGTH} characters"
    return None


def startup_problems(providers: Iterable[str]) -> list[str]:
    """Every reason the API or the worker must not start: each enabled provider's webhook
    secrets (one, or two during a rotation), and the admin token when one is set."""
    problems: list[str] = []
    for provider in providers:
        variable = webhook_secret_variable(provider)
        values = webhook_secrets(provider) or [""]
        if len(values) > 2:
            problems.append(f"{variable}: at most two secrets (new,previous) during a rotation")
        problems += [p for p in (secret_problem(variable, v) for v in values) if p]
    admin = os.environ.get("PAYSIGNAL_ADMIN_TOKEN")
    if admin is not None:
        problem = secret_problem("PAYSIGNAL_ADMIN_TOKEN", admin)
        if problem:
            problems.append(problem)
    return problems
