"""The one normalized settlement line every provider's report becomes, the kinds of line, and the
strict readers the provider modules share (text, CSV by header name, amounts, dates).

Each provider's own report format — its columns, record types, signs and file names — lives in
that provider's module (`engine/providers/<name>.py`, its `SETTLEMENT_REPORT`); nothing here
knows a provider's vocabulary."""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Protocol

from engine.domain.money import CURRENCY_EXPONENTS, MAX_AMOUNT_MINOR, format_minor
from engine.exceptions import PaysignalError, ValidationError

# What a line is, in paysignal's words. Money in the merchant's balance: charge (+), refund (−),
# refund_reversal (+, a refund that failed), chargeback (−), chargeback_reversal (+), fee (−, a
# fee booked on its own line), payout (−, to the bank), adjustment (±, anything else the
# provider books: transfers, currency conversion, holds, corrections).
CHARGE, REFUND, REFUND_REVERSAL = "charge", "refund", "refund_reversal"
CHARGEBACK, CHARGEBACK_REVERSAL = "chargeback", "chargeback_reversal"
FEE, PAYOUT, ADJUSTMENT = "fee", "payout", "adjustment"
LINE_KINDS = (CHARGE, REFUND, REFUND_REVERSAL, CHARGEBACK, CHARGEBACK_REVERSAL, FEE, PAYOUT,
              ADJUSTMENT)
MATCHED_KINDS = frozenset({CHARGE, REFUND, CHARGEBACK, CHARGEBACK_REVERSAL})
"""The kinds matched one by one against the ledger's expected settlement."""


@dataclass(frozen=True, slots=True)
class SettlementLine:
    """One line of a provider's report. Amounts are integer minor units, signed from the
    merchant balance's side: money in positive, money out negative."""

    provider: str
    line_id: str  # the provider's own identity of the line: never imported twice
    provider_reference: str  # the payment's reference at the provider (what we matched on)
    payment_reference: str | None  # our payment id, when the report carries it
    kind: str  # one of LINE_KINDS
    amount_minor: int  # gross, in `currency`
    fee_minor: int  # the provider's fee on this line in `net_currency`; negative: returned
    currency: str  # gross currency
    settled_on: date  # the settlement day the line belongs to
    net_minor: int = 0  # what reached the balance, in `net_currency`
    net_currency: str = ""
    payout_reference: str | None = None  # the payout that pays this line out, when known
    line_no: int = 0


@dataclass(frozen=True, slots=True)
class RowError:
    line_no: int
    reason: str
    raw: str


class FileRejectedError(PaysignalError):
    """The file cannot be taken at all (unreadable, incomplete, footers that disagree with its
    body); nothing from it is written."""

    def __init__(self, filename: str, reason: str) -> None:
        self.filename = filename
        self.reason = reason
        super().__init__(f"{filename}: rejected whole: {reason}")


@dataclass
class ParsedReport:
    lines: list[SettlementLine] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


class Renderer(Protocol):
    def __call__(self, day_lines: list[SettlementLine], day: date,
                 payout_offsets: Mapping[str, int] | None = None) -> dict[str, bytes]:
        """The day's files (file name -> bytes) for some lines, each currency's payout being
        the lines' net plus its offset (an injected payout discrepancy); the sandbox's side."""
        ...


@dataclass(frozen=True)
class ReportFormat:
    """A provider's settlement report as paysignal reads it (the sandbox's registry has each
    provider's `Renderer`, which writes it)."""

    provider: str
    title: str
    file_name: re.Pattern[str]  # the names this format's files carry
    parse: Callable[[bytes, str], ParsedReport]
    reference: str  # markdown for docs/reconciliation.md: layout, columns, signs, kinds
    complete_by_footer: bool  # the format proves it is complete (footers); else min age


# --- strict readers --------------------------------------------------------------------------

BOM = "\ufeff"
MAX_FIELD = 1000


def decode(data: bytes, filename: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FileRejectedError(filename, "not UTF-8 text") from None
    return text.removeprefix(BOM)


class CsvTable:
    """A CSV file read by header name: columns in any order, unknown ones ignored, optional
    ones possibly absent."""

    def __init__(self, text: str, filename: str, required: tuple[str, ...],
                 delimiter: str = ",") -> None:
        physical = text.splitlines(keepends=True)
        if not physical:
            raise FileRejectedError(filename, "empty file (no header row)")
        reader = csv.reader(physical, delimiter=delimiter, strict=True)
        try:
            self.header = [h.strip() for h in next(reader)]
        except csv.Error as exc:
            raise FileRejectedError(filename, f"unreadable header ({exc})") from None
        missing = [c for c in required if c not in self.header]
        if missing:
            raise FileRejectedError(filename, "header lacks the column(s) "
                                    + ", ".join(repr(c) for c in missing))
        self._physical = physical
        self._index = {name: i for i, name in reversed(list(enumerate(self.header)))}
        self.filename = filename
        self._delimiter = delimiter

    def has(self, column: str) -> bool:
        return column in self._index

    def rows(self) -> Iterator[tuple[int, dict[str, str] | str, str]]:
        """(line number, the row by column name or why it is unreadable, the raw line)."""
        width = len(self.header)
        for number, raw in enumerate(self._physical[1:], start=2):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            try:
                values = next(csv.reader([line], delimiter=self._delimiter, strict=True))
            except csv.Error as exc:
                yield number, f"unreadable CSV ({exc})", line
                continue
            if len(values) != width:
                yield number, f"wrong number of columns: {len(values)}, expected {width}", line
                continue
            if any(len(v) > MAX_FIELD for v in values):
                yield number, f"a value is longer than {MAX_FIELD} characters", line
                continue
            yield number, {name: values[i].strip() for name, i in self._index.items()}, line


def parse_rows(table_rows: Iterator[tuple[int, dict[str, str] | str, str]],
               convert: Callable[[dict[str, str]], SettlementLine | None]) -> ParsedReport:
    """Convert each row; a row that cannot be read is a RowError with its line number and
    reason, the others are kept. `convert` returns None for a row that is not a line (a
    report's own subtotal, for example)."""
    out = ParsedReport()
    for number, row, raw in table_rows:
        if isinstance(row, str):
            out.errors.append(RowError(number, row, raw))
            continue
        try:
            line = convert(row)
        except ValidationError as exc:
            out.errors.append(RowError(number, f"{exc.field}: {exc.reason}", raw))
            continue
        if line is not None:
            out.lines.append(with_line_no(line, number))
    return out


def with_line_no(line: SettlementLine, number: int) -> SettlementLine:
    return SettlementLine(line.provider, line.line_id, line.provider_reference,
                          line.payment_reference, line.kind, line.amount_minor, line.fee_minor,
                          line.currency, line.settled_on, line.net_minor,
                          line.net_currency or line.currency, line.payout_reference, number)


def required(row: Mapping[str, str], column: str) -> str:
    value = row.get(column, "")
    if not value:
        raise ValidationError(column, "is empty")
    return value


def currency_code(value: str, column: str) -> str:
    """An ISO 4217 code in any case (Stripe writes `usd`)."""
    code = value.strip().upper()
    if code not in CURRENCY_EXPONENTS:
        raise ValidationError(column, f"{value!r} is not a supported ISO 4217 currency")
    return code


_DECIMAL = re.compile(r"(-)?(\d*)(?:\.(\d*))?")
_INTEGER = re.compile(r"\d+")
_TOO_MANY_DIGITS = 30  # beyond MAX_AMOUNT_MINOR whatever the exponent; int() stays cheap


def major_units(value: str, currency: str, column: str, *, signed: bool = True) -> int:
    """A decimal amount in the currency's major unit ("100.00", "-40.00", ".11") as integer
    minor units by the currency's ISO 4217 exponent: more decimals than the currency allows,
    or an amount beyond MAX_AMOUNT_MINOR, is an error, never rounded or overflowed."""
    m = _DECIMAL.fullmatch(value.strip())
    if not value.strip() or m is None or (not m[2] and not m[3]) or (m[1] and not signed):
        raise ValidationError(column, f"{value!r} is not a{' ' if signed else 'n unsigned '}"
                                      "decimal amount")
    if len(m[2]) > _TOO_MANY_DIGITS:
        raise ValidationError(column, f"{value[:40]!r}… is beyond the largest amount paysignal "
                                      f"accepts ({MAX_AMOUNT_MINOR} minor units)")
    exponent = CURRENCY_EXPONENTS[currency]
    decimals = (m[3] or "").rstrip("0")
    if len(decimals) > exponent:
        raise ValidationError(column, f"{value!r} has more decimals than {currency} allows "
                                      f"({exponent})")
    minor = int((m[2] or "0") + decimals.ljust(exponent, "0"))
    return checked(-minor if m[1] else minor, column)


def minor_units(value: str, column: str) -> int:
    """An unsigned integer of minor units (PayPal's amounts), bounded."""
    if not _INTEGER.fullmatch(value.strip()):
        raise ValidationError(column, f"{value!r} is not an unsigned integer of minor units")
    if len(value.strip()) > _TOO_MANY_DIGITS:
        raise ValidationError(column, f"{value[:40]!r}… is beyond the largest amount paysignal "
                                      f"accepts ({MAX_AMOUNT_MINOR} minor units)")
    return checked(int(value), column)


def checked(minor: int, column: str) -> int:
    if abs(minor) > MAX_AMOUNT_MINOR:
        raise ValidationError(column, f"{minor} minor units is beyond the largest amount "
                                      f"paysignal accepts ({MAX_AMOUNT_MINOR})")
    return minor


def major_text(minor: int, currency: str) -> str:
    """Integer minor units as a major-unit decimal string ("-40.00"); for writing reports."""
    return format_minor(minor, currency)


_TIMESTAMP = re.compile(r"(\d{4})[-/](\d{2})[-/](\d{2})[ T](\d{2}):(\d{2}):(\d{2})"
                        r"(?: ?([+-])(\d{2}):?(\d{2}))?")


def timestamp(value: str, column: str, zone: timezone | None = None) -> datetime:
    """`YYYY-MM-DD HH:MM:SS` (or with slashes), with an optional `±HHMM` offset; without one,
    in `zone` (UTC by default)."""
    m = _TIMESTAMP.fullmatch(value.strip())
    if m is None:
        raise ValidationError(column, f"{value!r} is not a time (YYYY-MM-DD HH:MM:SS)")
    tz = zone or UTC
    if m[7]:
        offset = timedelta(hours=int(m[8]), minutes=int(m[9]))
        tz = timezone(offset if m[7] == "+" else -offset)
    try:
        return datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]),
                        tzinfo=tz)
    except ValueError:
        raise ValidationError(column, f"{value!r} is not a valid date and time") from None


def utc_day(value: str, column: str, zone: timezone | None = None) -> date:
    return timestamp(value, column, zone).astimezone(UTC).date()


def digest(*parts: object, length: int = 16) -> str:
    """A stable id fragment for what the sandbox writes (the same lines, the same ids)."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:length].upper()


def columns_table(columns: list[tuple[str, str]]) -> str:
    return "\n".join(["| column | what paysignal takes from it |", "|---|---|",
                      *(f"| `{name}` | {meaning} |" for name, meaning in columns)])


def kinds_sentence(column: str, kinds: Mapping[str, str]) -> str:
    return f"`{column}` values: " + ", ".join(f"`{value}` → {kind}"
                                              for value, kind in kinds.items()) + "."
