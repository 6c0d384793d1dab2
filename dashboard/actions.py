"""Every write the dashboard makes: a role check, then the engine's (or alerts') own service,
which writes the audit trail with the user. No SQL here."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine

from alerts.pipeline import create_silence, expire_silence
from dashboard.auth import Action, User
from engine.exceptions import ValidationError
from engine.payments.toggles import set_mode
from engine.providers import provider_names
from engine.settlement.breaks import move_break, sign_off


def _note(note: str, field: str = "note") -> str:
    if not note.strip():
        raise ValidationError(field, "say why (it goes on the audit trail)")
    return note.strip()


def assign_break(engine: Engine, user: User, break_id: str, owner: str,
                 note: str) -> dict[str, Any]:
    user.require(Action.WORK_BREAKS)
    if not owner.strip():
        raise ValidationError("owner", "name who will work the break")
    # assigning starts the investigation, as `paysignal breaks assign` does
    return move_break(engine, break_id, "investigating", actor=user.actor, note=_note(note),
                   owner=owner.strip())


def move(engine: Engine, user: User, break_id: str, to_status: str, note: str) -> dict[str, Any]:
    user.require(Action.WORK_BREAKS)
    return move_break(engine, break_id, to_status, actor=user.actor, note=_note(note))


def sign_off_day(engine: Engine, user: User, provider: str, day: date,
                 override: str = "") -> dict[str, Any]:
    user.require(Action.SIGN_OFF)
    return sign_off(engine, provider, day, actor=user.actor, override=override.strip() or None)


def silence(engine: Engine, user: User, matchers: list[str], hours: float,
            comment: str) -> dict[str, object]:
    user.require(Action.SILENCE_ALERTS)
    if not 0 < hours <= 24 * 14:
        raise ValidationError("duration", "must be more than 0 and at most 336 hours (14 days)")
    return create_silence(engine, [m.strip() for m in matchers if m.strip()], author=user.actor,
                          comment=_note(comment, "comment"), duration=timedelta(hours=hours))


def expire(engine: Engine, user: User, silence_id: str) -> None:
    user.require(Action.SILENCE_ALERTS)
    expire_silence(engine, silence_id, by=user.actor)


def set_toggle(engine: Engine, user: User, provider: str, mode: str, reason: str,
               method_type: str = "*", merchant_id: str = "*") -> dict[str, Any]:
    user.require(Action.SET_TOGGLES)
    return set_mode(engine, provider=provider, mode=mode, actor=user.actor,
                    known_providers=provider_names(), method_type=method_type,
                    merchant_id=merchant_id, reason=_note(reason, "reason"))
