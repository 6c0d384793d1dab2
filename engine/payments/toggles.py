"""Staged rollout toggles: idempotency enforcement per provider and payment-method type (card,
wallet, ...), optionally for one merchant. The most specific toggle wins: provider x type x
merchant, then provider x type, then provider x merchant, then the provider's own.

off      the Idempotency-Key is ignored: every request is processed as new
shadow   processed as new, but a would-be duplicate (a key seen before) is detected and counted
enforce  the Idempotency-Key protocol as documented (the default)

Every change is an audited action (who, when, from, to, why)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, insert, select, update

from engine.domain.method_types import MethodType, method_type_choices
from engine.domain.text import is_identifier, validate_text
from engine.exceptions import ValidationError
from engine.storage.tables import budget_policy_notes, rollout_toggles, toggle_audit

ANY = "*"  # a toggle for every method type, or every merchant
INHERITED = "inherited"  # a narrower toggle's mode before it had its own row


class Mode(StrEnum):
    OFF = "off"
    SHADOW = "shadow"
    ENFORCE = "enforce"


DEFAULT_MODE = Mode.ENFORCE


def set_mode(engine: Engine, *, provider: str, mode: str, actor: str, known_providers: list[str],
             method_type: str = ANY, merchant_id: str = ANY, reason: str = "") -> dict[str, Any]:
    if provider not in known_providers:
        raise ValidationError("provider", f"unknown provider {provider!r} "
                              f"(known: {', '.join(sorted(known_providers))})")
    if mode not in {m.value for m in Mode}:
        raise ValidationError("mode", "must be one of off, shadow, enforce")
    if method_type != ANY and method_type not in {t.value for t in MethodType}:
        raise ValidationError("method_type", f"must be '*' or one of {method_type_choices()}")
    if merchant_id != ANY and not is_identifier(merchant_id):
        raise ValidationError("merchant_id", "must be '*' or a merchant id")
    validate_text(actor, "actor", 128)
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("reason", "is required: say why enforcement changes (audited)")
    reason = validate_text(reason, "reason")
    now = datetime.now(UTC)
    scope = {"provider": provider, "method_type": method_type, "merchant_id": merchant_id}
    with engine.begin() as conn:
        where = (rollout_toggles.c.provider == provider,
                 rollout_toggles.c.method_type == method_type,
                 rollout_toggles.c.merchant_id == merchant_id)
        current = conn.execute(select(rollout_toggles.c.mode).where(*where)
                               .with_for_update()).scalar()
        # A narrower toggle without its own row inherits a wider one's mode: pinning it is a
        # change even to the same mode. Anything else that keeps the mode is not a change.
        inherits = current is None and (method_type, merchant_id) != (ANY, ANY)
        if not inherits and (current or DEFAULT_MODE.value) == mode:
            return {**scope, "from": mode, "to": mode, "changed": False}
        values = {"mode": mode, "updated_at": now, "updated_by": actor}
        if current is None:
            conn.execute(insert(rollout_toggles).values(**scope, **values))
        else:
            conn.execute(update(rollout_toggles).where(*where).values(**values))
        from_mode = INHERITED if inherits else current or DEFAULT_MODE.value
        conn.execute(insert(toggle_audit).values(
            provider=provider, payment_method=method_type, merchant_id=merchant_id,
            from_mode=from_mode, to_mode=mode, actor=actor, reason=reason, at=now))
    return {**scope, "from": from_mode, "to": mode, "actor": actor, "reason": reason,
            "at": now.isoformat(), "changed": True}


def record_policy(engine: Engine, provider: str, slo: str, note: str) -> None:
    """Record an error-budget policy decision for a provider: not a toggle change, a note that
    tells whoever changes its toggles next what the budget says."""
    with engine.begin() as conn:
        conn.execute(insert(budget_policy_notes).values(
            provider=provider, slo=slo[:63], note=note[:500], at=datetime.now(UTC)))


def policy_notes(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The latest error-budget policy notes, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(budget_policy_notes).order_by(budget_policy_notes.c.id.desc())
                            .limit(limit)).all()
    return [{"provider": r.provider, "slo": r.slo, "note": r.note, "at": r.at.isoformat()}
            for r in rows]


def current_modes(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(rollout_toggles).order_by(
            rollout_toggles.c.provider, rollout_toggles.c.method_type,
            rollout_toggles.c.merchant_id)).all()
    return [{"provider": r.provider, "method_type": r.method_type, "merchant_id": r.merchant_id,
             "mode": r.mode, "updated_by": r.updated_by, "updated_at": r.updated_at.isoformat()}
            for r in rows]


def audit_trail(engine: Engine, limit: int = 100) -> list[dict[str, Any]]:
    """Toggle changes, newest first (older databases also hold policy notes written here as
    no-op changes; those are in policy_notes now). Rows from before toggles were keyed by
    method type name the payment-method token they were set for (`token`)."""
    with engine.connect() as conn:
        rows = conn.execute(select(toggle_audit).where(
            toggle_audit.c.from_mode != toggle_audit.c.to_mode)
            .order_by(toggle_audit.c.id.desc()).limit(limit)).all()
    out = []
    for r in rows:
        keyed_by_type = r.payment_method == ANY or r.payment_method in set(MethodType)
        out.append({"provider": r.provider,
                    "method_type": r.payment_method if keyed_by_type else MethodType.CARD.value,
                    "merchant_id": r.merchant_id or ANY,
                    **({} if keyed_by_type else {"token": r.payment_method}),
                    "from": r.from_mode, "to": r.to_mode, "actor": r.actor, "reason": r.reason,
                    "at": r.at.isoformat()})
    return out


class ToggleReader:
    """Modes as the request path sees them, re-read at most every `ttl_s` seconds."""

    def __init__(self, engine: Engine, ttl_s: float = 5.0) -> None:
        self.engine, self.ttl_s = engine, ttl_s
        self._modes: dict[tuple[str, str, str], Mode] = {}
        self._read_at = float("-inf")

    def mode_for(self, provider: str, method_type: str | None, merchant_id: str) -> Mode:
        if time.monotonic() - self._read_at >= self.ttl_s:
            with self.engine.connect() as conn:
                rows = conn.execute(select(rollout_toggles.c.provider,
                                           rollout_toggles.c.method_type,
                                           rollout_toggles.c.merchant_id,
                                           rollout_toggles.c.mode)).all()
            self._modes = {(p, t, m): Mode(mode) for p, t, m, mode in rows}
            self._read_at = time.monotonic()
        kind = method_type or ANY
        for scope in ((kind, merchant_id), (kind, ANY), (ANY, merchant_id), (ANY, ANY)):
            mode = self._modes.get((provider, *scope))
            if mode is not None:
                return mode
        return DEFAULT_MODE
