"""Import a provider's settlement report: all or nothing per file, every line at most once.

- A file already imported (same SHA-256) is skipped.
- A line already imported (the provider's own line identity: Stripe's balance transaction, an
  Adyen batch row, a PayPal transaction and its T-code) is skipped and counted, so a partial
  file followed by the whole one, or a re-sent file, never doubles a line.
- A bad row is a row error with its line number and reason; the file's good rows are taken.
- A file that cannot be taken at all raises FileRejectedError and nothing is written.
- A corrected file may supersede an earlier one explicitly: the earlier file's lines are
  replaced, with an audit row saying who, when and why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.domain.ids import new_random_id
from engine.domain.settlement_lines import ReportFormat, RowError, SettlementLine
from engine.exceptions import PaysignalError, ValidationError
from engine.providers.registry import PROVIDERS, report_format_of
from engine.storage.tables import (
    settlement_file_audit,
    settlement_files,
    settlement_lines,
    settlement_row_errors,
)


class SupersedeRefusedError(PaysignalError):
    pass


@dataclass
class ImportReport:
    provider: str
    filename: str
    sha256: str
    file_id: str | None
    already_imported: bool = False
    line_count: int = 0
    duplicate_lines: int = 0
    """Lines skipped because an earlier file brought them already."""
    row_errors: list[RowError] = field(default_factory=list)
    days: set[date] = field(default_factory=set)
    """Settlement days this import changed (its lines', and a superseded file's)."""


_LINE_COLUMNS = ("file_id", "line_no", "provider", "line_id", "provider_reference",
                 "payment_reference", "kind", "amount_minor", "fee_minor", "currency",
                 "settled_on", "net_minor", "net_currency", "payout_reference")
_LIMITS = (("line_id", 255), ("provider_reference", 128), ("payment_reference", 255),
           ("payout_reference", 128))


def format_for(filename: str, provider: str | None = None) -> ReportFormat:
    """The report format of a file: the provider's when one is named, else by the file name."""
    if provider is not None:
        if provider not in PROVIDERS:
            raise ValidationError("provider", f"no settlement report for {provider!r} "
                                  f"(known: {', '.join(sorted(PROVIDERS))})")
        return PROVIDERS[provider].settlement_report
    found = report_format_of(filename)
    if found is None:
        raise ValidationError("file", f"{filename}: not a settlement report paysignal knows by "
                              "its name (" + "; ".join(
                                  f"{p}: {s.settlement_report.file_name.pattern}"
                                  for p, s in sorted(PROVIDERS.items())) + ")")
    return found


def _too_long(line: SettlementLine) -> str | None:
    for name, limit in _LIMITS:
        value = getattr(line, name)
        if value is not None and len(value) > limit:
            return f"{name}: longer than {limit} characters"
    return None


def _write_lines(conn: Connection, file_id: str, lines: list[SettlementLine]) -> None:
    rows = ((file_id, line.line_no, line.provider, line.line_id, line.provider_reference,
             line.payment_reference, line.kind, line.amount_minor, line.fee_minor,
             line.currency, line.settled_on, line.net_minor, line.net_currency or line.currency,
             line.payout_reference) for line in lines)
    if conn.dialect.name == "postgresql":  # COPY, in the same transaction: ~10x an INSERT batch
        driver = conn.connection.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        with cursor.copy(f"COPY settlement_lines ({', '.join(_LINE_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    conn.execute(insert(settlement_lines),
                 [dict(zip(_LINE_COLUMNS, row, strict=True)) for row in rows])


def _known_line_ids(conn: Connection, provider: str, days: set[date]) -> set[str]:
    """Line identities already imported for these settlement days (a line's day is part of
    the line, so a re-sent line is found among its own day's)."""
    if not days:
        return set()
    lines = settlement_lines.c
    return set(conn.execute(select(lines.line_id).where(
        lines.provider == provider, lines.settled_on.in_(sorted(days)))).scalars())


def import_file(engine: Engine, data: bytes, filename: str, *, provider: str | None = None,
                supersedes: str | None = None, actor: str = "importer") -> ImportReport:
    """Parse first (a file that cannot be taken raises FileRejectedError and nothing is
    written), then write the file, its new lines and its row errors in one transaction."""
    report_format = format_for(filename, provider)
    provider = report_format.provider
    digest = hashlib.sha256(data).hexdigest()
    with engine.connect() as conn:
        known = conn.execute(select(settlement_files.c.id)
                             .where(settlement_files.c.sha256 == digest)).scalar()
    if known:  # its days are reconciled again all the same: the ledger may have moved on
        with engine.connect() as conn:
            days = set(conn.execute(select(settlement_lines.c.settled_on).where(
                settlement_lines.c.file_id == known).distinct()).scalars())
        return ImportReport(provider, filename, digest, known, already_imported=True,
                            days=days)
    parsed = report_format.parse(data, filename)
    errors = list(parsed.errors)
    lines: list[SettlementLine] = []
    seen: set[str] = set()
    for line in parsed.lines:
        problem = _too_long(line)
        if problem is None and line.line_id in seen:
            problem = f"line id {line.line_id!r} appears earlier in the file"
        if problem:
            errors.append(RowError(line.line_no, problem, ""))
            continue
        seen.add(line.line_id)
        lines.append(line)
    errors.sort(key=lambda e: e.line_no)
    for attempt in range(2):  # a concurrent import of overlapping lines: read again, once
        try:
            return _store(engine, provider, filename, digest, lines, errors, supersedes, actor)
        except IntegrityError:
            with engine.connect() as conn:
                if conn.execute(select(settlement_files.c.id)
                                .where(settlement_files.c.sha256 == digest)).scalar():
                    return ImportReport(provider, filename, digest, None, already_imported=True)
            if attempt:
                raise
    raise AssertionError("unreachable")


def _store(engine: Engine, provider: str, filename: str, digest: str,
           lines: list[SettlementLine], errors: list[RowError], supersedes: str | None,
           actor: str) -> ImportReport:
    file_id = new_random_id("stf")
    now = datetime.now(UTC)
    days = {line.settled_on for line in lines}
    with engine.begin() as conn:
        if supersedes is not None:
            days |= _supersede(conn, provider, supersedes, file_id, filename, actor, now)
        known = _known_line_ids(conn, provider, days)
        fresh = [line for line in lines if line.line_id not in known]
        conn.execute(insert(settlement_files).values(
            id=file_id, provider=provider, filename=filename[:255], sha256=digest,
            lines=len(fresh), rejected_rows=len(errors), imported_at=now,
            duplicate_lines=len(lines) - len(fresh), status="imported"))
        if fresh:
            _write_lines(conn, file_id, fresh)
        if errors:
            conn.execute(insert(settlement_row_errors), [
                {"file_id": file_id, "line_no": e.line_no, "reason": e.reason[:255],
                 "raw": e.raw} for e in errors])
    return ImportReport(provider, filename, digest, file_id, line_count=len(fresh),
                        duplicate_lines=len(lines) - len(fresh), row_errors=errors,
                        days=days)


def _supersede(conn: Connection, provider: str, old_id: str, new_id: str, filename: str,
               actor: str, now: datetime) -> set[date]:
    files = settlement_files.c
    old = conn.execute(select(files.provider, files.status, files.filename)
                       .where(files.id == old_id)).first()
    if old is None:
        raise SupersedeRefusedError(f"no settlement file {old_id!r} to supersede")
    if old.provider != provider:
        raise SupersedeRefusedError(f"{old_id} is a {old.provider} file; {filename} is "
                                    f"{provider}'s")
    if old.status != "imported":
        raise SupersedeRefusedError(f"{old_id} is {old.status} already")
    days = set(conn.execute(select(settlement_lines.c.settled_on).where(
        settlement_lines.c.file_id == old_id).distinct()).scalars())
    removed = conn.execute(delete(settlement_lines)
                           .where(settlement_lines.c.file_id == old_id)).rowcount
    conn.execute(update(settlement_files).where(files.id == old_id)
                 .values(status="superseded", superseded_by=new_id))
    conn.execute(insert(settlement_file_audit).values(
        file_id=old_id, action="superseded", actor=actor[:128],
        note=f"superseded by {new_id} ({filename[:200]}): its {removed} lines replaced", at=now))
    return days


def format_reference_markdown() -> str:
    """The settlement-report reference of the docs, from each provider's own definition."""
    out = ["paysignal reads each provider's own settlement report. Every amount becomes "
           "integer minor units by the currency's ISO 4217 exponent; a value with more decimals "
           "than its currency allows, or beyond the largest amount paysignal accepts, is a row "
           "error with its line number and reason, never rounded, and the rest of the file is "
           "imported. A file that cannot be taken at all (not UTF-8, a missing column, footers "
           "that disagree with the body) is rejected whole and nothing from it is written. A "
           "line the provider identifies as one already imported is skipped, so a partial file "
           "followed by the whole one, or a file sent twice, never doubles a line.", "",
           "| kind | money in the balance |", "|---|---|",
           "| charge | + a payment captured |", "| refund | − |",
           "| refund_reversal | + a refund that failed |", "| chargeback | − a dispute lost "
           "or its funds withdrawn |", "| chargeback_reversal | + |",
           "| fee | − a fee booked on its own line |", "| payout | − to the bank |",
           "| adjustment | ± anything else (transfers, conversion, corrections) |"]
    for _name, spec in sorted(PROVIDERS.items()):
        report = spec.settlement_report
        out += ["", f"### {report.title}", "", report.reference]
    return "\n".join(out)
