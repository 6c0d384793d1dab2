"""Provider connectors behind one `Gateway` protocol (engine.providers.base)."""

from __future__ import annotations


def provider_names() -> list[str]:
    """Every provider this build can talk to, sorted."""
    from engine.providers.simulated import PROVIDER_CLASSES

    return sorted(PROVIDER_CLASSES)
