"""Request fingerprints for Idempotency-Key comparisons."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_fingerprint(operation: str, params: dict[str, Any]) -> str:
    """SHA-256 of the operation and its canonical parameters (key order never matters)."""
    return hashlib.sha256(canonical_json({"op": operation, "params": params}).encode()).hexdigest()


def differing_fields(operation_a: str, params_a: dict[str, Any],
                     operation_b: str, params_b: dict[str, Any]) -> list[str]:
    """Names of the top-level fields that differ between two requests."""
    diff = [] if operation_a == operation_b else ["operation"]
    for name in sorted(set(params_a) | set(params_b)):
        if canonical_json(params_a.get(name)) != canonical_json(params_b.get(name)):
            diff.append(name)
    return diff
