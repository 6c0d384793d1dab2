"""Provider connectors behind one `Gateway` protocol (engine.providers.base), one module per
provider (stripe, adyen, paypal), listed once in engine.providers.registry."""

from __future__ import annotations


def provider_names() -> list[str]:
    """Every provider this build can talk to, sorted."""
    from engine.providers.registry import provider_names as names

    return names()
