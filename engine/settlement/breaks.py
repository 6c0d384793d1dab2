"""The break workflow finance works from, and provider-day sign-off. Every action is audited."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, select, update

from engine.domain.money import CURRENCY_EXPONENTS, Money
from engine.domain.text import validate_text
from engine.exceptions import PaysignalError, ValidationError
from engine.exports import csv_text
from engine.files import write_atomically
from engine.storage.repository import utc
from engine.storage.tables import (
    recon_break_audit,
    recon_breaks,
    recon_checkpoint_amounts,
    recon_checkpoints,
    recon_sign_offs,
)

# One table of allowed moves, like the payment state machine.
BREAK_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"investigating", "resolved", "written_off"}),
    "investigating": frozenset({"open", "resolved", "written_off"}),
    "resolved": frozenset(),
    "written_off": frozenset(),
}
CLOSED = frozenset(status for status, moves in BREAK_TRANSITIONS.items() if not moves)


class BreakNotFoundError(PaysignalError):
    def __init__(self, break_id: str) -> None:
        super().__init__(f"no break {break_id!r}")


class InvalidBreakTransitionError(PaysignalError):
    def __init__(self, break_id: str, from_status: str, to_status: str) -> None:
        if from_status == to_status:
            super().__init__(f"break {break_id} is already {from_status}: nothing to change")
        else:
            super().__init__(f"break {break_id}: {from_status} -> {to_status} is not allowed")


class SignOffRefusedError(PaysignalError):
    pass


def _row(engine: Engine, break_id: str) -> Any:
    with engine.connect() as conn:
        row = conn.execute(select(recon_breaks).where(recon_breaks.c.id == break_id)).first()
    if row is None:
        raise BreakNotFoundError(break_id)
    return row


def list_breaks(engine: Engine, *, status: str | None = None, provider: str | None = None,
                kind: str | None = None) -> list[dict[str, Any]]:
    query = select(recon_breaks).order_by(recon_breaks.c.settled_on, recon_breaks.c.provider,
                                          recon_breaks.c.kind, recon_breaks.c.id)
    if status:
        if status not in BREAK_TRANSITIONS:
            raise ValidationError("status", f"must be one of {', '.join(BREAK_TRANSITIONS)}")
        query = query.where(recon_breaks.c.status == status)
    if provider:
        query = query.where(recon_breaks.c.provider == provider)
    if kind:
        query = query.where(recon_breaks.c.kind == kind)
    now = datetime.now(UTC)
    with engine.connect() as conn:
        rows = [_aware(dict(r._mapping)) for r in conn.execute(query)]
    for r in rows:
        r["age_hours"] = round((now - r["opened_at"]).total_seconds() / 3600, 1)
    return rows


def _aware(row: dict[str, Any]) -> dict[str, Any]:
    """Timestamps as UTC-aware datetimes on either backend (SQLite returns them naive)."""
    return {k: utc(v) if isinstance(v, datetime) else v for k, v in row.items()}


def show_break(engine: Engine, break_id: str) -> dict[str, Any]:
    row = _aware(dict(_row(engine, break_id)._mapping))
    with engine.connect() as conn:
        row["audit"] = [_aware(dict(a._mapping)) for a in conn.execute(
            select(recon_break_audit).where(recon_break_audit.c.break_id == break_id)
            .order_by(recon_break_audit.c.id))]
    return row


def move_break(engine: Engine, break_id: str, to_status: str, *, actor: str, note: str,
               owner: str | None = None) -> dict[str, Any]:
    """Assign (owner, and open -> investigating) or move a break; the audit says who and why."""
    validate_text(actor, "actor", 128)
    validate_text(note, "note", 1000)
    if to_status not in BREAK_TRANSITIONS:
        raise ValidationError("status", f"must be one of {', '.join(BREAK_TRANSITIONS)}")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        row = conn.execute(select(recon_breaks).where(recon_breaks.c.id == break_id)
                           .with_for_update()).first()
        if row is None:
            raise BreakNotFoundError(break_id)
        if to_status == row.status and to_status in CLOSED:
            raise InvalidBreakTransitionError(break_id, row.status, to_status)  # already closed
        if to_status != row.status and to_status not in BREAK_TRANSITIONS[row.status]:
            raise InvalidBreakTransitionError(break_id, row.status, to_status)
        values: dict[str, Any] = {"status": to_status, "updated_at": now}
        if owner is not None:
            values["owner"] = validate_text(owner, "owner", 128)
        conn.execute(update(recon_breaks).where(recon_breaks.c.id == break_id).values(**values))
        conn.execute(insert(recon_break_audit).values(
            break_id=break_id, from_status=row.status, to_status=to_status, actor=actor,
            note=note if owner is None else f"{note} (owner: {owner})", at=now))
    return show_break(engine, break_id)


def sign_off(engine: Engine, provider: str, day: date, *, actor: str,
             override: str | None = None) -> dict[str, Any]:
    """Finance signs off a provider-day. With open breaks that needs an explicit override
    reason, which is recorded. Every sign-off is kept (who, when, why, how many breaks were
    open); a second one supersedes the first, which stays in `sign_offs`."""
    validate_text(actor, "actor", 128)
    with engine.begin() as conn:
        where = and_(recon_checkpoints.c.provider == provider,
                     recon_checkpoints.c.settled_on == day)
        checkpoint = conn.execute(select(recon_checkpoints).where(where)).first()
        if checkpoint is None:
            raise SignOffRefusedError(f"{provider} {day} has not been reconciled yet")
        still_open = conn.execute(select(recon_breaks.c.id).where(
            recon_breaks.c.provider == provider, recon_breaks.c.settled_on == day,
            recon_breaks.c.status.in_(("open", "investigating")))).all()
        if still_open and not override:
            raise SignOffRefusedError(
                f"{provider} {day} has {len(still_open)} open breaks; sign off with an "
                "override reason to accept them")
        if override:
            validate_text(override, "override", 1000)
        now = datetime.now(UTC)
        kept_override = override if still_open else None
        conn.execute(insert(recon_sign_offs).values(
            provider=provider, settled_on=day, actor=actor, at=now, override=kept_override,
            open_breaks=len(still_open)))
        conn.execute(update(recon_checkpoints).where(where).values(
            signed_off_by=actor, signed_off_at=now, sign_off_override=kept_override))
        row = dict(conn.execute(select(recon_checkpoints).where(where)).one()._mapping)
        row["sign_offs"] = _sign_offs(conn, provider, day)
        return row


def _sign_offs(conn: Connection, provider: str, day: date) -> list[dict[str, Any]]:
    """Every sign-off of the provider-day, oldest first (the last one stands)."""
    s = recon_sign_offs.c
    rows = conn.execute(select(s.actor, s.at, s.override, s.open_breaks).where(
        s.provider == provider, s.settled_on == day).order_by(s.id)).all()
    return [_aware(dict(r._mapping)) for r in rows]


def checkpoints(engine: Engine, with_history: bool = False) -> list[dict[str, Any]]:
    """Checkpoints per provider-day with their amounts per currency (`amounts`: matched and at
    stake in breaks, never summed across currencies); with_history adds every sign-off."""
    a = recon_checkpoint_amounts.c
    with engine.connect() as conn:
        rows = [_aware(dict(r._mapping)) for r in conn.execute(select(recon_checkpoints)
                                                               .order_by(
            recon_checkpoints.c.settled_on, recon_checkpoints.c.provider))]
        amounts: dict[tuple[str, date], list[dict[str, Any]]] = {}
        for r in conn.execute(select(recon_checkpoint_amounts).order_by(
                a.settled_on, a.provider, a.currency)):
            amounts.setdefault((r.provider, r.settled_on), []).append(
                {k: v for k, v in r._mapping.items() if k not in ("provider", "settled_on")})
        for row in rows:
            row["amounts"] = amounts.get((row["provider"], row["settled_on"]), [])
            if with_history:
                row["sign_offs"] = _sign_offs(conn, row["provider"], row["settled_on"])
    return rows


BREAK_EXPORT_COLUMNS = (
    "id", "provider", "settled_on", "kind", "provider_reference", "payment_id", "status",
    "owner", "currency", "expected_currency", "expected_minor", "expected_major",
    "actual_minor", "actual_major", "opened_at", "updated_at")
CHECKPOINT_EXPORT_COLUMNS = (
    "provider", "settled_on", "currency", "matched_count", "matched_minor", "matched_major",
    "break_count", "break_minor", "break_major", "reconciled_at", "signed_off_by",
    "signed_off_at", "sign_off_override")
_INTEGER_COLUMNS = frozenset({"expected_minor", "actual_minor", "matched_count", "matched_minor",
                              "break_count", "break_minor"})


def _major(minor: int | None, currency: str | None) -> str | None:
    """Minor units as an exact decimal string in the currency's major unit ('484.77')."""
    if minor is None or currency not in CURRENCY_EXPONENTS:
        return None
    return Money(minor, str(currency)).to_decimal_string()


def break_export_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Breaks as exported: each amount in minor units and, beside it, in major units of its
    own currency (ours for expected, the provider's for actual)."""
    return [{**r, "expected_major": _major(r["expected_minor"],
                                           r.get("expected_currency") or r["currency"]),
             "actual_major": _major(r["actual_minor"], r["currency"])} for r in rows]


def checkpoint_export_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Checkpoints as exported: one row per provider-day and currency (a day reconciled with
    no lines keeps one row without a currency)."""
    out = []
    for r in rows:
        base = {k: v for k, v in r.items() if k not in ("amounts", "sign_offs")}
        for amount in r["amounts"] or [{"currency": None, "matched_minor": None,
                                        "break_minor": None}]:
            currency = amount["currency"]
            out.append({**base, **amount,
                        "matched_major": _major(amount["matched_minor"], currency),
                        "break_major": _major(amount["break_minor"], currency)})
    return out


def export(rows: list[dict[str, Any]], path: Path, columns: tuple[str, ...]) -> None:
    """Write rows to `path` as CSV or Parquet (by its suffix), all or nothing: a temporary
    file is renamed into place once complete. Minor units stay integers (nullable Int64 in
    Parquet, never floats); major units are exact decimal strings."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValidationError("export", f"{path.name}: use a .csv or .parquet file name")
    if not path.parent.is_dir():
        raise ValidationError("export", f"{path.parent} is not a directory")

    def write(partial: Path) -> None:
        if suffix == ".csv":
            partial.write_text(to_csv(rows, list(columns)))
            return
        import pandas as pd

        frame = pd.DataFrame(rows, columns=list(columns))
        for column in columns:
            if column in _INTEGER_COLUMNS:
                frame[column] = frame[column].astype("Int64")
        frame.to_parquet(partial, index=False)

    write_atomically(path, write)


def to_csv(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Spreadsheet-safe CSV: text from outside never becomes a formula."""
    fields = columns or ([k for k in rows[0] if k != "audit"] if rows else [])
    return csv_text(({k: ("" if v is None else v) for k, v in r.items()} for r in rows),
                    fields) if fields else ""
