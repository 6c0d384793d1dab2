"""Import settlement files and reconcile the provider-days they cover."""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from engine.exceptions import ValidationError
from engine.settlement.formats import FORMATS
from engine.settlement.importer import ImportReport, import_file
from engine.settlement.reconcile import Break, DayResult, reconcile_day, reconcile_days
from engine.storage.tables import settlement_lines

_NAME = re.compile(r"^(?P<provider>[a-z]+)_(?P<day>\d{4}-\d{2}-\d{2})\.\w+$")


@dataclass
class RunReport:
    imports: list[ImportReport] = field(default_factory=list)
    days: list[DayResult] = field(default_factory=list)

    def opened(self) -> list[Break]:
        """Breaks this run opened and did not close again (a late line closes the
        missing-settlement break its own earlier day opened)."""
        closed = {(d.provider, kind, ref) for d in self.days for kind, ref in d.closed_breaks}
        return [b for d in self.days for b in d.new_breaks
                if (b.provider, b.kind, b.provider_reference) not in closed]

    def closed(self) -> list[tuple[str, str, str]]:
        """(provider, kind, provider reference) of the breaks this run closed."""
        return [(d.provider, kind, ref) for d in self.days for kind, ref in d.closed_breaks]

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
            "files": [{"file": r.filename, "lines": r.line_count,
                       "already_imported": r.already_imported,
                       "row_errors": [{"line": e.line_no, "reason": e.reason}
                                      for e in r.row_errors]} for r in self.imports],
        }


def _break_json(b: Break) -> dict[str, Any]:
    return {"kind": b.kind, "provider": b.provider, "provider_reference": b.provider_reference,
            "payment_id": b.payment_id, "currency": b.currency,
            "expected_currency": b.expected_currency,
            "expected_minor": b.expected_minor, "actual_minor": b.actual_minor}


def provider_of(path: Path) -> str:
    match = _NAME.match(path.name)
    if not match or match["provider"] not in FORMATS:
        raise ValidationError("file", f"{path.name}: expected <provider>_<YYYY-MM-DD>.<ext> with a "
                              f"provider among {', '.join(sorted(FORMATS))}")
    return match["provider"]


Progress = Callable[[str, int, int], None]
"""(stage, done, total): stage "importing" counts bytes, "reconciling" counts provider-days."""

PARALLEL_IMPORT_BYTES = 8 * 1024 * 1024


def _import_one(url: str, provider: str, path: str) -> ImportReport:
    from engine.storage import db

    engine = db.make_engine(url, pool_size=1)
    try:
        return import_file(engine, provider, Path(path).read_bytes(), Path(path).name)
    finally:
        engine.dispose()


def import_files(engine: Engine, files: list[tuple[str, Path]],
                 progress: Progress | None = None) -> list[ImportReport]:
    """Import each (provider, path), each file in its own transaction. Large batches on
    PostgreSQL are parsed and copied by one process per core."""
    sizes = [path.stat().st_size for _, path in files]
    total, done = sum(sizes), 0
    if progress:
        progress("importing", 0, total)
    workers = min(len(files), os.cpu_count() or 1)
    if engine.dialect.name == "postgresql" and workers > 1 and total >= PARALLEL_IMPORT_BYTES:
        url = engine.url.render_as_string(hide_password=False)
        reports: list[ImportReport | None] = [None] * len(files)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_import_one, url, provider, str(path)): i
                       for i, (provider, path) in enumerate(files)}
            for future in as_completed(futures):
                i = futures[future]
                reports[i] = future.result()
                done += sizes[i]
                if progress:
                    progress("importing", done, total)
        return [r for r in reports if r is not None]
    out = []
    for (provider, path), size in zip(files, sizes, strict=True):
        out.append(import_file(engine, provider, path.read_bytes(), path.name))
        done += size
        if progress:
            progress("importing", done, total)
    return out


def reconcile_files(engine: Engine, files: list[tuple[str, Path]],
                    progress: Progress | None = None) -> RunReport:
    """Import each (provider, path), then reconcile every provider-day the files cover, oldest
    first (so a late line can close the missing-settlement break of an earlier day)."""
    report = RunReport(imports=import_files(engine, files, progress))
    days: set[tuple[str, date]] = set()
    for provider, path in files:
        match = _NAME.match(path.name)
        if match:
            days.add((provider, date.fromisoformat(match["day"])))
    for r in report.imports:
        if r.file_id:
            with engine.connect() as conn:
                days |= {(r.provider, d) for d in conn.execute(
                    select(settlement_lines.c.settled_on).where(
                        settlement_lines.c.file_id == r.file_id).distinct()).scalars()}
    report.days = reconcile_days(engine, days, progress=(
        (lambda n, total: progress("reconciling", n, total)) if progress else None))
    return report


def reconcile_directory(engine: Engine, directory: Path,
                        progress: Progress | None = None) -> RunReport:
    if not directory.is_dir():
        raise ValidationError("dir", f"{directory} is not a directory")
    files = [(provider_of(p), p) for p in sorted(directory.iterdir())
             if p.is_file() and p.name != "ground_truth.json" and not p.name.startswith(".")]
    return reconcile_files(engine, files, progress)


def reconcile_provider_day(engine: Engine, provider: str, on: date, file: Path | None = None,
                           progress: Progress | None = None) -> RunReport:
    """Reconcile one provider-day, importing `file` first when given."""
    if provider not in FORMATS:
        raise ValidationError("provider", f"unknown provider {provider!r} "
                                          f"(known: {', '.join(sorted(FORMATS))})")
    if file is None:
        return RunReport(days=[reconcile_day(engine, provider, on)])
    report = reconcile_files(engine, [(provider, file)], progress)
    report.days = [d for d in report.days if d.settled_on == on] or [
        reconcile_day(engine, provider, on)]
    return report
