"""Webhook secrets for simulated runs (the demo, sim-test): there is no default secret, so a run
that finds none sets random ones of its own, which the processes it starts inherit."""

from __future__ import annotations

import os
import secrets

from engine.providers import provider_names
from engine.providers.config import webhook_secret_variable


def ensure_webhook_secrets() -> list[str]:
    """Set a random secret for every provider that has none; returns the variables set."""
    generated = []
    for provider in provider_names():
        variable = webhook_secret_variable(provider)
        if not os.environ.get(variable):
            os.environ[variable] = secrets.token_hex(32)
            generated.append(variable)
    return generated
