"""The one generator of ids for rows paysignal names itself."""

from __future__ import annotations

import uuid


def new_random_id(prefix: str) -> str:
    """`<prefix>_<32 hex digits>`: random, so two processes never collide."""
    return f"{prefix}_{uuid.uuid4().hex}"
