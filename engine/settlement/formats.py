"""Each provider's settlement file format, rendered (by the simulator) and parsed (by the
importer) into one normalized settlement line.

INTERIM: these are paysignal's own simplified formats, filed under the provider each resembles,
not the providers' real reports (Stripe's itemized balance-change and payout reconciliation
CSVs, Adyen's settlement details report, PayPal's STL); those replace them with the finance
issue.

stripe  CSV, comma; integer minor units, refunds negative; lower-case currency; epoch seconds
adyen   CSV, semicolon; decimal strings in separate debit/credit columns; booking times in the
        Europe/Amsterdam time zone
paypal  pipe-delimited with header and trailer records; signed decimal strings; DD/MM/YYYY
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from engine.domain.money import Money, validate_currency
from engine.exceptions import PaysignalError, ValidationError


@dataclass(frozen=True, slots=True)
class SettlementLine:
    provider: str
    provider_reference: str
    payment_reference: str | None
    kind: str  # charge | refund | chargeback
    amount_minor: int  # signed: money in is positive, refunds and chargebacks negative
    fee_minor: int
    currency: str
    settled_on: date
    line_no: int = 0


@dataclass(frozen=True, slots=True)
class RowError:
    line_no: int
    reason: str
    raw: str


class FileRejectedError(PaysignalError):
    """The file cannot be read at all; nothing from it is written."""

    def __init__(self, filename: str, reason: str) -> None:
        self.filename = filename
        super().__init__(f"{filename}: rejected whole: {reason}")


Parsed = tuple[list[SettlementLine], list[RowError]]


def _decode(data: bytes, filename: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise FileRejectedError(filename, "not UTF-8 text") from None


def _rows(text: str, delimiter: str, header: list[str],
          filename: str) -> list[tuple[int, dict[str, str], str]]:
    lines = text.splitlines()
    if not lines or next(csv.reader([lines[0]], delimiter=delimiter)) != header:
        raise FileRejectedError(filename, f"header is not {delimiter.join(header)!r}")
    out = []
    width = len(header)
    # one line per record (no quoted newlines in these formats), so lines and rows pair up
    for number, (raw, values) in enumerate(zip(lines[1:], csv.reader(lines[1:],
                                                                     delimiter=delimiter), strict=False),
                                           start=2):
        if not raw.strip():
            continue
        out.append((number, dict(zip(header, values, strict=False)) if len(values) == width
                    else {"": f"{len(values)}/{width}"}, raw))
    return out


def _parse_rows(rows: list[tuple[int, dict[str, str], str]],
                convert: Callable[[dict[str, str]], SettlementLine]) -> Parsed:
    lines: list[SettlementLine] = []
    errors: list[RowError] = []
    for number, row, raw in rows:
        if "" in row:  # the row's column count did not match: "found/expected"
            found, expected = row[""].split("/")
            errors.append(RowError(number, f"wrong number of columns: {found}, expected "
                                           f"{expected}", raw))
            continue
        try:
            line = convert(row)
        except ValidationError as exc:
            errors.append(RowError(number, f"{exc.field}: {exc.reason}", raw))
        except (KeyError, ValueError) as exc:
            errors.append(RowError(number, f"unreadable value ({exc})", raw))
        else:
            lines.append(_with_line(line, number))
    return lines, errors


def _with_line(line: SettlementLine, number: int) -> SettlementLine:
    return SettlementLine(line.provider, line.provider_reference, line.payment_reference,
                          line.kind, line.amount_minor, line.fee_minor, line.currency,
                          line.settled_on, number)


def _int(row: dict[str, str], field: str) -> int:
    try:
        return int(row[field])
    except ValueError:
        raise ValidationError(field, f"{row[field]!r} is not an integer of minor units") from None


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DMY_DATE = re.compile(r"(\d{2})/(\d{2})/(\d{4})")
_ISO_TIME = re.compile(r"\d{2}:\d{2}:\d{2}")


def _date(value: str, field: str, fmt: str) -> date:
    """fmt is %Y-%m-%d or %d/%m/%Y (parsed without strptime, which dominates large files)."""
    try:
        if fmt == "%Y-%m-%d" and _ISO_DATE.fullmatch(value):
            return date.fromisoformat(value)
        if fmt == "%d/%m/%Y" and (m := _DMY_DATE.fullmatch(value)):
            return date(int(m[3]), int(m[2]), int(m[1]))
    except ValueError:
        pass
    raise ValidationError(field, f"{value!r} is not a date ({fmt})")


def _require(value: str, field: str) -> str:
    if not value.strip():
        raise ValidationError(field, "is empty")
    return value.strip()


# --- stripe ------------------------------------------------------------------------------

STRIPE_HEADER = ["id", "source", "type", "amount", "fee", "net", "currency", "created",
                    "available_on", "metadata_payment_id"]
_NW_TYPES = {"charge": "charge", "refund": "refund", "adjustment": "chargeback"}


def render_stripe(lines: list[SettlementLine]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STRIPE_HEADER)
    for i, line in enumerate(lines):
        kind = {v: k for k, v in _NW_TYPES.items()}[line.kind]
        created = int(datetime(line.settled_on.year, line.settled_on.month, line.settled_on.day,
                               tzinfo=UTC).timestamp()) - 3600
        writer.writerow([f"txn_{i:06d}", line.provider_reference, kind, line.amount_minor,
                         line.fee_minor, line.amount_minor - line.fee_minor,
                         line.currency.lower(), created, line.settled_on.isoformat(),
                         line.payment_reference or ""])
    return out.getvalue().encode()


def parse_stripe(data: bytes, filename: str) -> Parsed:
    def convert(row: dict[str, str]) -> SettlementLine:
        kind = _NW_TYPES.get(row["type"])
        if kind is None:
            raise ValidationError("type", f"unknown type {row['type']!r}")
        amount, fee, net = _int(row, "amount"), _int(row, "fee"), _int(row, "net")
        if amount - fee != net:
            raise ValidationError("net", f"{net} is not amount - fee ({amount} - {fee})")
        return SettlementLine("stripe", _require(row["source"], "source"),
                              row["metadata_payment_id"] or None, kind, amount, fee,
                              validate_currency(row["currency"].upper()),
                              _date(row["available_on"], "available_on", "%Y-%m-%d"))

    return _parse_rows(_rows(_decode(data, filename), ",", STRIPE_HEADER, filename), convert)


# --- adyen ------------------------------------------------------------------------------

ADYEN_HEADER = ["Merchant Account", "Psp Reference", "Merchant Reference", "Type",
                    "Booking Date", "TimeZone", "Gross Currency", "Gross Debit (GC)",
                    "Gross Credit (GC)", "Commission (NC)"]
_SB_TYPES = {"Settled": "charge", "Refunded": "refund", "Chargeback": "chargeback"}
_SB_ZONE = ZoneInfo("Europe/Amsterdam")


def render_adyen(lines: list[SettlementLine]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(ADYEN_HEADER)
    for line in lines:
        kind = {v: k for k, v in _SB_TYPES.items()}[line.kind]
        booked = datetime(line.settled_on.year, line.settled_on.month, line.settled_on.day, 9,
                          30, tzinfo=_SB_ZONE)
        gross = Money(abs(line.amount_minor), line.currency).to_decimal_string()
        debit, credit = ("", gross) if line.amount_minor > 0 else (gross, "")
        writer.writerow(["PaysignalECOM", line.provider_reference, line.payment_reference or "",
                         kind, booked.strftime("%Y-%m-%d %H:%M:%S"), "CET", line.currency,
                         debit, credit, Money(line.fee_minor, line.currency).to_decimal_string()
                         if line.fee_minor else "0"])
    return out.getvalue().encode()


def parse_adyen(data: bytes, filename: str) -> Parsed:
    def convert(row: dict[str, str]) -> SettlementLine:
        kind = _SB_TYPES.get(row["Type"])
        if kind is None:
            raise ValidationError("Type", f"unknown type {row['Type']!r}")
        currency = validate_currency(row["Gross Currency"], "Gross Currency")
        debit, credit = row["Gross Debit (GC)"].strip(), row["Gross Credit (GC)"].strip()
        if bool(debit) == bool(credit):
            raise ValidationError("Gross Debit (GC)", "exactly one of debit and credit is set")
        amount = (Money.from_decimal_string(credit, currency, "Gross Credit (GC)").amount_minor
                  if credit else
                  -Money.from_decimal_string(debit, currency, "Gross Debit (GC)").amount_minor)
        fee_text = row["Commission (NC)"].strip()
        fee = 0 if fee_text in ("", "0") else Money.from_decimal_string(
            fee_text, currency, "Commission (NC)").amount_minor
        clock = row["Booking Date"][11:] or "00:00:00"
        if not _ISO_TIME.fullmatch(clock):
            raise ValidationError("Booking Date", f"{clock!r} is not a time (HH:MM:SS)")
        booked = datetime.combine(_date(row["Booking Date"][:10], "Booking Date", "%Y-%m-%d"),
                                  time.fromisoformat(clock), tzinfo=_SB_ZONE)
        return SettlementLine("adyen", _require(row["Psp Reference"], "Psp Reference"),
                              row["Merchant Reference"] or None, kind, amount, fee, currency,
                              booked.astimezone(UTC).date())

    return _parse_rows(_rows(_decode(data, filename), ";", ADYEN_HEADER, filename), convert)


# --- paypal --------------------------------------------------------------------------------

PAYPAL_COLUMNS = ["REC", "TXN_REF", "ORDER_ID", "TXN_TYPE", "AMT", "CCY", "FEE", "SETTLE_DATE"]
_EP_TYPES = {"SALE": "charge", "REFUND": "refund", "CHARGEBACK": "chargeback"}


def render_paypal(lines: list[SettlementLine]) -> bytes:
    day = lines[0].settled_on if lines else date.today()
    out = [f"H|PAYPAL|SETTLEMENT|{day.strftime('%Y%m%d')}"]
    for line in lines:
        kind = {v: k for k, v in _EP_TYPES.items()}[line.kind]
        amount = Money(abs(line.amount_minor), line.currency).to_decimal_string()
        out.append("|".join(["D", line.provider_reference, line.payment_reference or "", kind,
                             amount if line.amount_minor > 0 else f"-{amount}", line.currency,
                             Money(line.fee_minor, line.currency).to_decimal_string()
                             if line.fee_minor else "0",
                             line.settled_on.strftime("%d/%m/%Y")]))
    out.append(f"T|{len(lines)}")
    return ("\n".join(out) + "\n").encode()


def parse_paypal(data: bytes, filename: str) -> Parsed:
    text = _decode(data, filename)
    records = [r for r in text.splitlines() if r.strip()]
    if not records or not records[0].startswith("H|PAYPAL|SETTLEMENT|"):
        raise FileRejectedError(filename, "missing the H|PAYPAL|SETTLEMENT header record")
    if not records[-1].startswith("T|"):
        raise FileRejectedError(filename, "missing the T| trailer record (truncated file?)")
    details = records[1:-1]
    try:
        declared = int(records[-1].split("|")[1])
    except (IndexError, ValueError):
        raise FileRejectedError(filename, "unreadable trailer count") from None
    if declared != len(details):
        raise FileRejectedError(filename, f"trailer says {declared} records, file has "
                                f"{len(details)} (truncated or padded)")
    rows = []
    for number, raw in enumerate(details, start=2):
        values = raw.split("|")
        rows.append((number, dict(zip(PAYPAL_COLUMNS, values, strict=True))
                     if len(values) == len(PAYPAL_COLUMNS)
                     else {"": f"{len(values)}/{len(PAYPAL_COLUMNS)}"}, raw))

    def convert(row: dict[str, str]) -> SettlementLine:
        kind = _EP_TYPES.get(row["TXN_TYPE"])
        if kind is None:
            raise ValidationError("TXN_TYPE", f"unknown type {row['TXN_TYPE']!r}")
        currency = validate_currency(row["CCY"], "CCY")
        text_amount = row["AMT"].strip()
        sign = -1 if text_amount.startswith("-") else 1
        amount = sign * Money.from_decimal_string(text_amount.lstrip("-"), currency,
                                                  "AMT").amount_minor
        fee = 0 if row["FEE"] in ("", "0") else Money.from_decimal_string(
            row["FEE"], currency, "FEE").amount_minor
        settled = _date(row["SETTLE_DATE"], "SETTLE_DATE", "%d/%m/%Y")
        return SettlementLine("paypal", _require(row["TXN_REF"], "TXN_REF"),
                              row["ORDER_ID"] or None, kind, amount, fee, currency, settled)

    return _parse_rows(rows, convert)


@dataclass(frozen=True)
class FormatSpec:
    """A provider's settlement format as the importer reads it: the single definition the
    parser, the simulator and the documentation (format_reference_markdown) all use."""
    provider: str
    extension: str
    layout: str
    columns: tuple[tuple[str, str], ...]  # (column, what the importer takes from it)
    types: dict[str, str]  # the provider's type value -> our kind
    type_column: str
    render: Callable[[list[SettlementLine]], bytes]
    parse: Callable[[bytes, str], Parsed]

    def file_name(self, day: date) -> str:
        return f"{self.provider}_{day.isoformat()}.{self.extension}"


def _described(names: list[str], meanings: dict[str, str]) -> tuple[tuple[str, str], ...]:
    assert set(meanings) == set(names), set(meanings) ^ set(names)  # every column documented
    return tuple((name, meanings[name]) for name in names)


SPECS: dict[str, FormatSpec] = {spec.provider: spec for spec in (
    FormatSpec(
        "stripe", "csv", "CSV, comma-separated, UTF-8, one header row with exactly these "
        "columns in this order; integer minor units; refunds and chargebacks negative.",
        _described(STRIPE_HEADER, {
            "id": "the provider's balance transaction id (not used)",
            "source": "provider reference of the charge or refund (required)",
            "type": "line type, see below", "amount": "gross, signed integer minor units",
            "fee": "fee in minor units", "net": "amount − fee; a row where it is not is refused",
            "currency": "ISO 4217 code, lower case", "created": "epoch seconds (not used)",
            "available_on": "settlement day, YYYY-MM-DD",
            "metadata_payment_id": "our payment id, for lines whose reference we do not know"}),
        _NW_TYPES, "type", render_stripe, parse_stripe),
    FormatSpec(
        "adyen", "csv", "CSV, semicolon-separated, UTF-8, one header row with exactly these "
        "columns in this order; unsigned decimal amounts in the currency's major unit, in a "
        "debit or a credit column (exactly one set); booking times in Europe/Amsterdam, whose "
        "UTC date is the settlement day.",
        _described(ADYEN_HEADER, {
            "Merchant Account": "the merchant account at the provider (not used)",
            "Psp Reference": "provider reference (required)",
            "Merchant Reference": "our payment id, for lines whose reference we do not know",
            "Type": "line type, see below",
            "Booking Date": "YYYY-MM-DD HH:MM:SS, Europe/Amsterdam",
            "TimeZone": "the provider's zone label (not used; the zone is Europe/Amsterdam)",
            "Gross Currency": "ISO 4217 code", "Gross Debit (GC)": "money out (refunds)",
            "Gross Credit (GC)": "money in (charges)",
            "Commission (NC)": "fee, decimal; 0 or empty for none"}),
        _SB_TYPES, "Type", render_adyen, parse_adyen),
    FormatSpec(
        "paypal", "txt", "Pipe-delimited, UTF-8: a header record `H|PAYPAL|SETTLEMENT|"
        "YYYYMMDD`, then one `D|…` detail record per line with exactly these fields in this "
        "order, then a trailer `T|<number of detail records>`; a file whose trailer count "
        "differs is refused whole (truncated or padded). Signed decimal amounts in the "
        "currency's major unit.",
        _described(PAYPAL_COLUMNS, {
            "REC": "record type, always D", "TXN_REF": "provider reference (required)",
            "ORDER_ID": "our payment id, for lines whose reference we do not know",
            "TXN_TYPE": "line type, see below", "AMT": "signed decimal amount",
            "CCY": "ISO 4217 code", "FEE": "fee, decimal; 0 or empty for none",
            "SETTLE_DATE": "settlement day, DD/MM/YYYY"}),
        _EP_TYPES, "TXN_TYPE", render_paypal, parse_paypal),
)}

FORMATS: dict[str, tuple[Callable[[list[SettlementLine]], bytes],
                         Callable[[bytes, str], Parsed]]] = {
    provider: (spec.render, spec.parse) for provider, spec in SPECS.items()}


def format_reference_markdown() -> str:
    """The settlement-format reference of the docs, from the definitions above."""
    out = ["**Interim formats:** paysignal's own simplified files, one per provider, not yet "
           "the providers' real reports (Stripe's itemized reports, Adyen's settlement details "
           "report, PayPal's STL), which replace them with the finance issue.", "",
           "Files are named `<provider>_<YYYY-MM-DD>.<ext>` (for example "
           f"`{SPECS['stripe'].file_name(date(2026, 11, 20))}`); the date is the settlement "
           "day the file covers. Every amount becomes integer minor units by the currency's "
           "ISO 4217 exponent; a value with more decimals than its currency allows is a row "
           "error, never rounded. A bad row is reported with its line number and reason and "
           "the rest of the file is imported; a file that cannot be read at all (not UTF-8, "
           "wrong header, missing or wrong trailer) is refused whole."]
    for spec in SPECS.values():
        out += ["", f"### {spec.provider} (`.{spec.extension}`)", "", spec.layout, "",
                "| column | what the importer takes from it |", "|---|---|"]
        out += [f"| `{name}` | {meaning} |" for name, meaning in spec.columns]
        out += ["", f"`{spec.type_column}` values: " + ", ".join(
            f"`{value}` → {kind}" for value, kind in spec.types.items()) + "."]
    return "\n".join(out)
