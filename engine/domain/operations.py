"""The operations a payment asks its provider for."""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"
