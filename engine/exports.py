"""CSV for finance that a spreadsheet cannot be made to execute.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel, LibreOffice
and Google Sheets as a formula (`=HYPERLINK(…)`, `@SUM(…)`, DDE). Text from outside — a provider's
reference, a settlement file's description, a note — is prefixed with a single quote, which
spreadsheets show as text. Plain numbers ("-40.00") are left as they are, so amounts stay
numbers."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def neutralised(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as CSV with a header, every cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([neutralised(row.get(c, "")) for c in columns])
    return out.getvalue()


def csv_rows(rows: Iterable[Sequence[Any]]) -> str:
    """Plain rows (the first one the header) as CSV, every cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([neutralised(v) for v in row])
    return out.getvalue()
