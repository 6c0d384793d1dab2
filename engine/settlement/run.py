"""Import settlement files and reconcile the provider-days they cover."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, select

from engine.adapters.tables import settlement_lines
from engine.exceptions import ValidationError
from engine.settlement.expected import expected_settlement
from engine.settlement.formats import FORMATS
from engine.settlement.importer import ImportReport, import_file
from engine.settlement.reconcile import DayResult, reconcile_day

_NAME = re.compile(r"^(?P<provider>[a-z]+)_(?P<day>\d{4}-\d{2}-\d{2})\.\w+$")


@dataclass
class RunReport:
    imports: list[ImportReport] = field(default_factory=list)
    days: list[DayResult] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "matched": sum(d.matched for d in self.days),
            "matched_amount_minor": sum(d.matched_amount_minor for d in self.days),
            "breaks": [{"kind": b.kind, "provider": b.provider,
                        "provider_reference": b.provider_reference, "payment_id": b.payment_id,
                        "expected_minor": b.expected_minor, "actual_minor": b.actual_minor}
                       for d in self.days for b in d.breaks],
            "days": [{"provider": d.provider, "settled_on": d.settled_on.isoformat(),
                      "matched": d.matched, "breaks": len(d.breaks),
                      "closed_automatically": d.closed} for d in self.days],
            "files": [{"file": r.filename, "lines": len(r.lines),
                       "already_imported": r.already_imported,
                       "row_errors": [{"line": e.line_no, "reason": e.reason}
                                      for e in r.row_errors]} for r in self.imports],
        }


def provider_of(path: Path) -> str:
    match = _NAME.match(path.name)
    if not match or match["provider"] not in FORMATS:
        raise ValidationError("file", f"{path.name}: expected <provider>_<YYYY-MM-DD>.<ext> with a "
                              f"provider among {', '.join(sorted(FORMATS))}")
    return match["provider"]


def reconcile_files(engine: Engine, files: list[tuple[str, Path]],
                    progress: Callable[[int, int], None] | None = None) -> RunReport:
    """Import each (provider, path), then reconcile every provider-day the files cover, oldest
    first (so a late line can close the missing-settlement break of an earlier day)."""
    report = RunReport()
    for n, (provider, path) in enumerate(files, start=1):
        report.imports.append(import_file(engine, provider, path.read_bytes(), path.name))
        if progress:
            progress(n, len(files))
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
    expected = {p: expected_settlement(engine, p) for p in {p for p, _ in days}}
    for provider, day in sorted(days, key=lambda pd: (pd[1], pd[0])):
        report.days.append(reconcile_day(engine, provider, day, expected=expected[provider]))
    return report


def reconcile_directory(engine: Engine, directory: Path,
                        progress: Callable[[int, int], None] | None = None) -> RunReport:
    if not directory.is_dir():
        raise ValidationError("dir", f"{directory} is not a directory")
    files = [(provider_of(p), p) for p in sorted(directory.iterdir())
             if p.is_file() and p.name != "ground_truth.json" and not p.name.startswith(".")]
    return reconcile_files(engine, files, progress)
