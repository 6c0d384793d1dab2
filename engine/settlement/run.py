"""Import settlement files and reconcile the provider-days they cover."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from engine.domain.settlement_lines import FileRejectedError
from engine.exceptions import PaysignalError, ValidationError
from engine.providers.registry import PROVIDERS, report_format_of
from engine.settlement.bank import BankImport, BankMatch, import_statement, is_bank_statement, match_bank
from engine.settlement.importer import ImportReport, import_file
from engine.settlement.payouts import PayoutCheck, refresh_payouts
from engine.settlement.reconcile import Break, DayResult, reconcile_day, reconcile_days

log = logging.getLogger("paysignal.settlement")

QUARANTINE = "quarantine"
_NOT_YET = (".part", ".partial", ".tmp", ".filepart", ".crdownload")




@dataclass(frozen=True)
class SkippedFile:
    """A file a run did not import, and why: `quarantined` (a name paysignal does not know:
    moved to DIR/quarantine/), `rejected` (unreadable, incomplete or inconsistent: left in
    place and tried again next run), `waiting` (still being written)."""
    file: str
    status: str
    reason: str


@dataclass
class RunReport:
    imports: list[ImportReport] = field(default_factory=list)
    days: list[DayResult] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    payouts: list[PayoutCheck] = field(default_factory=list)
    statements: list[BankImport] = field(default_factory=list)
    bank: BankMatch | None = None

    def _money_loop(self) -> tuple[list[Break], list[Break]]:
        """(opened, closed) breaks of payouts and the bank."""
        checks: list[PayoutCheck | BankMatch] = [*self.payouts, *([self.bank] if self.bank
                                                                 else [])]
        return ([b for c in checks for b in c.opened], [b for c in checks for b in c.closed])

    def opened(self) -> list[Break]:
        """Breaks this run opened and did not close again (a late line closes the
        missing-settlement break its own earlier day opened)."""
        closed = {(d.provider, *key) for d in self.days for key in d.closed_breaks}
        return [b for d in self.days for b in d.new_breaks
                if (b.provider, b.kind, b.provider_reference, b.line_key) not in closed
                ] + self._money_loop()[0]

    def closed(self) -> list[tuple[str, str, str]]:
        """(provider, kind, provider reference) of the breaks this run closed."""
        return [(d.provider, kind, ref) for d in self.days for kind, ref, _ in d.closed_breaks
                ] + [(b.provider, b.kind, b.provider_reference) for b in self._money_loop()[1]]

    def matched_by_currency(self) -> dict[str, int]:
        """Currency -> matched amount in minor units (never summed across currencies)."""
        out: dict[str, int] = {}
        for d in self.days:
            for currency, (_lines, minor) in d.matched_by_currency.items():
                out[currency] = out.get(currency, 0) + minor
        return dict(sorted(out.items()))

    def as_json(self) -> dict[str, Any]:
        return {
            "matched": sum(d.matched for d in self.days),
            "matched_by_currency": self.matched_by_currency(),
            "breaks": [_break_json(b) for d in self.days for b in d.breaks],
            "opened": [_break_json(b) for b in self.opened()],
            "already_open": sum(1 for d in self.days for b in d.breaks if b not in d.new_breaks),
            "closed": [{"provider": p, "kind": k, "provider_reference": r}
                       for p, k, r in self.closed()],
            "days": [{"provider": d.provider, "settled_on": d.settled_on.isoformat(),
                      "matched": d.matched, "breaks": len(d.breaks),
                      "closed_automatically": d.closed} for d in self.days],
            "files": [{"file": r.filename, "provider": r.provider, "lines": r.line_count,
                       "already_imported": r.already_imported,
                       "duplicate_lines": r.duplicate_lines,
                       "row_errors": [{"line": e.line_no, "reason": e.reason}
                                      for e in r.row_errors]} for r in self.imports],
            "skipped": [{"file": f.file, "status": f.status, "reason": f.reason}
                        for f in self.skipped],
            "payouts_checked": sum(c.payouts for c in self.payouts),
            "bank": None if self.bank is None else {
                "statements": [{"file": b.filename, "already_imported": b.already_imported,
                                "credits": b.credits, "duplicate_credits": b.duplicate_credits,
                                "row_errors": [{"line": e.line_no, "reason": e.reason}
                                               for e in b.row_errors]}
                               for b in self.statements],
                "payouts_matched": self.bank.matched,
                "as_of": self.bank.as_of.isoformat() if self.bank.as_of else None},
        }


def _break_json(b: Break) -> dict[str, Any]:
    return {"kind": b.kind, "provider": b.provider, "provider_reference": b.provider_reference,
            "line": b.line_key,
            "payment_id": b.payment_id, "currency": b.currency,
            "expected_currency": b.expected_currency,
            "expected_minor": b.expected_minor, "actual_minor": b.actual_minor}


Progress = Callable[[str, int, int], None]
"""(stage, done, total): stage "importing" counts bytes, "reconciling" counts provider-days."""

PARALLEL_IMPORT_BYTES = 8 * 1024 * 1024
ImportOutcome = ImportReport | SkippedFile


def _import_guarded(engine: Engine, path: Path, provider: str | None,
                    supersedes: str | None = None, actor: str = "importer") -> ImportOutcome:
    """One file, in its own transaction; whatever goes wrong stays with this file."""
    try:
        return import_file(engine, path.read_bytes(), path.name, provider=provider,
                           supersedes=supersedes, actor=actor)
    except FileRejectedError as exc:
        return SkippedFile(path.name, "rejected", exc.reason)
    except (PaysignalError, OSError) as exc:
        return SkippedFile(path.name, "rejected", str(exc))
    except SQLAlchemyError as exc:
        log.exception("settlement file %s could not be stored", path.name)
        return SkippedFile(path.name, "rejected", f"could not be stored "
                           f"({type(exc).__name__}); see the worker's log")


def _import_one(url: str, path: str, provider: str | None) -> ImportOutcome:
    from engine.storage import db

    engine = db.make_engine(url, pool_size=1)
    try:
        return _import_guarded(engine, Path(path), provider)
    finally:
        engine.dispose()


def import_files(engine: Engine, files: list[tuple[str | None, Path]],
                 progress: Progress | None = None) -> list[ImportOutcome]:
    """Import each (provider or None to tell by name, path), each file in its own
    transaction; a file that fails is reported and the others go on. Large batches on
    PostgreSQL are parsed and copied by one process per core."""
    sizes = [path.stat().st_size for _, path in files]
    total, done = sum(sizes), 0
    if progress:
        progress("importing", 0, total)
    workers = min(len(files), os.cpu_count() or 1)
    if engine.dialect.name == "postgresql" and workers > 1 and total >= PARALLEL_IMPORT_BYTES:
        url = engine.url.render_as_string(hide_password=False)
        reports: list[ImportOutcome | None] = [None] * len(files)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_import_one, url, str(path), provider): i
                       for i, (provider, path) in enumerate(files)}
            for future in as_completed(futures):
                i = futures[future]
                reports[i] = future.result()
                done += sizes[i]
                if progress:
                    progress("importing", done, total)
        return [r for r in reports if r is not None]
    out: list[ImportOutcome] = []
    for (provider, path), size in zip(files, sizes, strict=True):
        out.append(_import_guarded(engine, path, provider))
        done += size
        if progress:
            progress("importing", done, total)
    return out


def _days_of(reports: list[ImportReport]) -> set[tuple[str, date]]:
    return {(r.provider, d) for r in reports for d in r.days}


def reconcile_files(engine: Engine, files: list[tuple[str | None, Path]],
                    progress: Progress | None = None, *,
                    skipped: list[SkippedFile] | None = None,
                    statements: list[Path] | None = None) -> RunReport:
    """Import each (provider or None, path), then reconcile every provider-day the new lines
    cover, oldest first (so a late line can close the missing-settlement break of an earlier
    day)."""
    outcomes = import_files(engine, files, progress)
    report = RunReport(imports=[o for o in outcomes if isinstance(o, ImportReport)],
                       skipped=list(skipped or []) + [o for o in outcomes
                                                      if isinstance(o, SkippedFile)])
    days = _days_of(report.imports)
    report.days = reconcile_days(engine, days, progress=(
        (lambda n, total: progress("reconciling", n, total)) if progress else None))
    _close_the_loop(engine, report, days, statements or [])
    return report


def _close_the_loop(engine: Engine, report: RunReport, days: set[tuple[str, date]],
                    statements: list[Path]) -> None:
    """Payouts against the lines they pay out, then bank statements against payouts."""
    for provider in sorted({p for p, _ in days}):
        report.payouts.append(refresh_payouts(engine, provider,
                                              {d for p, d in days if p == provider}))
    for path in statements:
        try:
            report.statements.append(import_statement(engine, path.read_bytes(), path.name))
        except (PaysignalError, OSError) as exc:
            reason = exc.reason if isinstance(exc, FileRejectedError) else str(exc)
            report.skipped.append(SkippedFile(path.name, "rejected", reason))
    if report.payouts or report.statements:
        report.bank = match_bank(engine)


def reconcile_directory(engine: Engine, directory: Path, progress: Progress | None = None, *,
                        min_age_s: float = 0.0) -> RunReport:
    """Every provider report in DIR. A name paysignal does not know is quarantined (moved to
    DIR/quarantine/) and reported; a file still being written (a `.part`-style name, or, for
    formats without footers, changed less than `min_age_s` ago) waits for the next run."""
    if not directory.is_dir():
        raise ValidationError("dir", f"{directory} is not a directory")
    files: list[tuple[str | None, Path]] = []
    statements: list[Path] = []
    skipped: list[SkippedFile] = []
    now = time.time()
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.name == "ground_truth.json":
            continue
        if path.name.lower().endswith(_NOT_YET):
            skipped.append(SkippedFile(path.name, "waiting", "still being written (its name "
                                       "says so); taken once renamed"))
            continue
        if is_bank_statement(path.name):
            if now - path.stat().st_mtime >= min_age_s:
                statements.append(path)
            else:
                skipped.append(SkippedFile(path.name, "waiting", "a bank statement is taken "
                                           f"once unchanged for {min_age_s:.0f} s"))
            continue
        found = report_format_of(path.name)
        if found is None:
            skipped.append(SkippedFile(path.name, "quarantined", _quarantine(directory, path)))
            continue
        age = now - path.stat().st_mtime
        if not found.complete_by_footer and age < min_age_s:
            skipped.append(SkippedFile(path.name, "waiting", f"changed {age:.0f} s ago; a "
                                       f"{found.provider} report has no footer, so it is taken "
                                       f"once unchanged for {min_age_s:.0f} s"))
            continue
        files.append((found.provider, path))
    return reconcile_files(engine, files, progress, skipped=skipped, statements=statements)


def _quarantine(directory: Path, path: Path) -> str:
    target_dir = directory / QUARANTINE
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    n = 1
    while target.exists():
        target = target_dir / f"{path.stem}.{n}{path.suffix}"
        n += 1
    reason = ("not a settlement report paysignal knows by its name; moved to "
              f"{QUARANTINE}/{target.name}")
    try:
        path.rename(target)
    except OSError as exc:
        reason = f"not a settlement report paysignal knows by its name; could not move it ({exc})"
    log.warning("settlement file %s quarantined: %s", path.name, reason)
    return reason


def reconcile_provider_day(engine: Engine, provider: str, on: date, file: Path | None = None,
                           progress: Progress | None = None, *, supersedes: str | None = None,
                           actor: str = "importer") -> RunReport:
    """Reconcile one provider-day, importing `file` first when given (as a correction of the
    file `supersedes`, when given)."""
    if provider not in PROVIDERS:
        raise ValidationError("provider", f"unknown provider {provider!r} "
                                          f"(known: {', '.join(sorted(PROVIDERS))})")
    if file is None:
        return RunReport(days=[reconcile_day(engine, provider, on)])
    outcome = _import_guarded(engine, file, provider, supersedes, actor)
    if isinstance(outcome, SkippedFile):
        raise FileRejectedError(outcome.file, outcome.reason)
    report = RunReport(imports=[outcome])
    days = _days_of([outcome]) | {(provider, on)}
    report.days = reconcile_days(engine, days)
    _close_the_loop(engine, report, days, [])
    return report
