"""Validation of the free-text and identifier fields clients send."""

from __future__ import annotations

import re

from engine.exceptions import ValidationError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
IDENTIFIER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def validate_text(value: object, field: str, max_length: int = 255) -> str:
    """1..max_length characters, no control characters (PostgreSQL cannot even store NUL)."""
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise ValidationError(field, f"must be a string of 1 to {max_length} characters")
    if _CONTROL.search(value):
        raise ValidationError(field, "must not contain control characters")
    return value


def is_identifier(value: str) -> bool:
    return bool(IDENTIFIER.match(value))
