"""Bank statements, and the last step of the money loop: each provider payout must arrive at the
bank. A statement is an ISO 20022 camt.053 (BkToCstmrStmt) or a plain CSV export; its booked
credits are matched to payouts by currency, a date window and the payout's reference in the
remittance information, else by amount.

Breaks: a payout not seen at the bank within PAYSIGNAL_PAYOUT_ARRIVAL_DAYS of being paid
(`payout_missing`), a credit matched by its reference with another amount
(`payout_amount_mismatch`), and a credit no payout explains within the same window
(`bank_credit_unmatched`). "Within the window" is judged against the latest day the imported
statements cover (a camt.053's period end or closing balance date, else its last booking), never
the wall clock, so a statement imported late raises nothing false."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from sqlalchemy import Connection, Engine, func, insert, select, update

from engine.domain.settlement_lines import (
    CsvTable,
    FileRejectedError,
    RowError,
    currency_code,
    decode,
    digest,
    major_text,
    major_units,
    required,
)
from engine.exceptions import ValidationError
from engine.settlement.kinds import kinds_of
from engine.settlement.reconcile import Break, record_breaks
from engine.settlement.settings import settlement_settings
from engine.storage.tables import bank_credits, bank_statements, payouts

BANK_KINDS = kinds_of("bank")
CAMT_NAME = re.compile(r"(?i)^[\w.-]*camt\.?053[\w.-]*\.xml$")
CSV_NAME = re.compile(r"(?i)^bank[_-][\w.-]*\.csv$")
BANK = "bank"  # the provider column of a break about a credit no provider explains


@dataclass(frozen=True, slots=True)
class Credit:
    entry_ref: str
    booked_on: date
    amount_minor: int
    currency: str
    reference: str
    counterparty: str
    line_no: int = 0


@dataclass
class Statement:
    account: str
    format: str
    credits: list[Credit] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    debits: int = 0
    pending: int = 0  # credits not booked yet (PDNG, INFO): not arrivals
    covers_to: date | None = None  # the statement's own period end, when it states one

    def last_day(self) -> date | None:
        booked = [c.booked_on for c in self.credits]
        return max([*booked, *([self.covers_to] if self.covers_to else [])], default=None)


def is_bank_statement(filename: str) -> bool:
    return bool(CAMT_NAME.match(filename) or CSV_NAME.match(filename))


# --- reading ---------------------------------------------------------------------------------

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: Element, *path: str) -> Element | None:
    """The first descendant along `path`, by local name (any camt.053 version's namespace)."""
    current: Element | None = node
    for name in path:
        if current is None:
            return None
        current = next((c for c in current if _local(c.tag) == name), None)
    return current


def _text(node: Element, *path: str) -> str:
    found = _child(node, *path)
    return (found.text or "").strip() if found is not None else ""


def parse_camt053(data: bytes, filename: str) -> Statement:
    """Booked credit entries of every statement in the message. External entities, DTDs and
    entity expansion are refused (defusedxml): the file is hostile until read."""
    try:
        root = ElementTree.fromstring(data, forbid_dtd=True)
    except (ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
        raise FileRejectedError(filename, f"not a readable XML document ({exc})") from None
    message = _child(root, "BkToCstmrStmt")
    if message is None:
        raise FileRejectedError(filename, "not a camt.053 statement (no BkToCstmrStmt)")
    statements = [s for s in message if _local(s.tag) == "Stmt"]
    if not statements:
        raise FileRejectedError(filename, "the statement message holds no Stmt")
    account = (_text(statements[0], "Acct", "Id", "IBAN")
               or _text(statements[0], "Acct", "Id", "Othr", "Id"))
    if not account:
        raise FileRejectedError(filename, "the statement names no account (Acct/Id)")
    out = Statement(account[:64], "camt053")
    number = 0
    for stmt in statements:
        period_end = (_text(stmt, "FrToDt", "ToDtTm")[:10]
                      or next((_text(b, "Dt", "Dt") for b in stmt if _local(b.tag) == "Bal"
                               and _text(b, "Tp", "CdOrPrtry", "Cd") == "CLBD"), ""))
        try:
            end = date.fromisoformat(period_end) if period_end else None
        except ValueError:
            raise FileRejectedError(filename, f"statement period end {period_end!r} is not a "
                                    "date") from None
        if end and (out.covers_to is None or end > out.covers_to):
            out.covers_to = end
        for entry in (e for e in stmt if _local(e.tag) == "Ntry"):
            number += 1
            try:
                credit = _entry(entry, number)
            except ValidationError as exc:
                out.errors.append(RowError(number, f"{exc.field}: {exc.reason}",
                                           f"Ntry {number}"))
                continue
            if credit == "DBIT":
                out.debits += 1
            elif isinstance(credit, str):
                out.pending += 1
            else:
                out.credits.append(credit)
    return out


def _entry(entry: Element, number: int) -> Credit | str:
    """A booked credit, or what else the entry is: "DBIT", or its status (PDNG, INFO)."""
    direction = _text(entry, "CdtDbtInd")
    if direction not in ("CRDT", "DBIT"):
        raise ValidationError("CdtDbtInd", f"{direction!r} is neither CRDT nor DBIT")
    status = _text(entry, "Sts", "Cd") or _text(entry, "Sts")
    if direction == "DBIT":
        return direction
    if status not in ("BOOK", ""):
        return status  # pending or informational: not an arrival (yet)
    amount_node = _child(entry, "Amt")
    if amount_node is None:
        raise ValidationError("Amt", "is missing")
    currency = currency_code(amount_node.get("Ccy", ""), "Amt/@Ccy")
    amount = major_units(amount_node.text or "", currency, "Amt", signed=False)
    booked_text = _text(entry, "BookgDt", "Dt") or _text(entry, "BookgDt", "DtTm")[:10]
    try:
        booked = date.fromisoformat(booked_text)
    except ValueError:
        raise ValidationError("BookgDt", f"{booked_text!r} is not a date") from None
    details = _child(entry, "NtryDtls", "TxDtls")
    reference = " ".join(filter(None, [
        _text(entry, "AddtlNtryInf"),
        *(_text(details, *p) for p in (("RmtInf", "Ustrd"), ("Refs", "EndToEndId"))
          if details is not None)]))
    counterparty = _text(details, "RltdPties", "Dbtr", "Nm") if details is not None else ""
    if not counterparty and details is not None:
        counterparty = _text(details, "RltdPties", "Dbtr", "Pty", "Nm")
    entry_ref = (_text(entry, "AcctSvcrRef") or _text(entry, "NtryRef")
                 or digest(booked, amount, currency, reference, number))
    return Credit(entry_ref[:128], booked, amount, currency, reference[:500], counterparty[:255],
                  number)


CSV_REQUIRED = ("booking_date", "amount", "currency")


def parse_bank_csv(data: bytes, filename: str) -> Statement:
    """A bank's CSV export, columns by name: booking_date (YYYY-MM-DD), amount (signed decimal,
    credits positive), currency; optional reference, counterparty, entry_id, account."""
    table = CsvTable(decode(data, filename), filename, CSV_REQUIRED)
    accounts: set[str] = set()
    debits = 0

    def convert(row: dict[str, str]) -> Credit | None:
        nonlocal debits
        currency = currency_code(required(row, "currency"), "currency")
        amount = major_units(required(row, "amount"), currency, "amount")
        try:
            booked = date.fromisoformat(required(row, "booking_date"))
        except ValueError:
            raise ValidationError("booking_date", f"{row['booking_date']!r} is not a date "
                                  "(YYYY-MM-DD)") from None
        if row.get("account"):
            accounts.add(row["account"])
        if amount <= 0:
            debits += 1
            return None
        reference, counterparty = row.get("reference", ""), row.get("counterparty", "")
        entry = row.get("entry_id") or digest(booked, amount, currency, reference, counterparty)
        return Credit(entry[:128], booked, amount, currency, reference[:500], counterparty[:255])

    credits: list[Credit] = []
    errors: list[RowError] = []
    for number, row, raw in table.rows():
        if isinstance(row, str):
            errors.append(RowError(number, row, raw))
            continue
        try:
            credit = convert(row)
        except ValidationError as exc:
            errors.append(RowError(number, f"{exc.field}: {exc.reason}", raw))
            continue
        if credit is not None:
            credits.append(replace(credit, line_no=number))
    if len(accounts) > 1:
        raise FileRejectedError(filename, f"the export mixes accounts ({', '.join(sorted(accounts))})")
    return Statement(next(iter(accounts), filename.rsplit(".", 1)[0])[:64], "csv", credits, errors,
                     debits)


# --- importing ---------------------------------------------------------------------------------

@dataclass
class BankImport:
    filename: str
    statement_id: str | None
    already_imported: bool = False
    credits: int = 0
    duplicate_credits: int = 0
    debits_skipped: int = 0
    pending_skipped: int = 0
    row_errors: list[RowError] = field(default_factory=list)


def import_statement(engine: Engine, data: bytes, filename: str) -> BankImport:
    """One transaction; a statement already imported is skipped; a credit an overlapping
    statement already brought (same account and entry reference) is not doubled."""
    digest_hex = hashlib.sha256(data).hexdigest()
    with engine.connect() as conn:
        known = conn.execute(select(bank_statements.c.id).where(
            bank_statements.c.sha256 == digest_hex)).scalar()
    if known:
        return BankImport(filename, known, already_imported=True)
    if CAMT_NAME.match(filename):
        statement = parse_camt053(data, filename)
    elif CSV_NAME.match(filename):
        statement = parse_bank_csv(data, filename)
    else:
        raise ValidationError("file", f"{filename}: a bank statement is named *camt053*.xml "
                                      "(ISO 20022 camt.053) or bank-*.csv (a CSV export)")
    covers_to = statement.last_day()
    if covers_to is None:
        raise FileRejectedError(filename, "no booked entry and no statement period: nothing to "
                                "learn from it")
    statement_id = f"bst_{digest_hex[:24]}"
    with engine.begin() as conn:
        seen = set(conn.execute(select(bank_credits.c.entry_ref).where(
            bank_credits.c.account == statement.account)).scalars())
        fresh = [c for c in statement.credits if c.entry_ref not in seen]
        unique = list({c.entry_ref: c for c in fresh}.values())
        conn.execute(insert(bank_statements).values(
            id=statement_id, filename=filename[:255], sha256=digest_hex,
            format=statement.format, account=statement.account, credits=len(unique),
            covers_to=covers_to, imported_at=datetime.now(UTC)))
        if unique:
            conn.execute(insert(bank_credits), [
                {"id": f"bcr_{digest(statement.account, c.entry_ref, length=24).lower()}",
                 "statement_id": statement_id, "account": statement.account,
                 "entry_ref": c.entry_ref, "booked_on": c.booked_on,
                 "amount_minor": c.amount_minor, "currency": c.currency,
                 "reference": c.reference, "counterparty": c.counterparty, "payout_id": None}
                for c in unique])
    return BankImport(filename, statement_id, credits=len(unique),
                      duplicate_credits=len(statement.credits) - len(unique),
                      debits_skipped=statement.debits, pending_skipped=statement.pending,
                      row_errors=statement.errors)


# --- matching --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BankMatch:
    matched: int
    as_of: date | None
    opened: list[Break]
    closed: list[Break]


def match_bank(engine: Engine, actor: str = "reconciler", window_days: int | None = None,
               ) -> BankMatch:
    """Match every payout not yet seen at the bank to a credit not yet explained, then record
    what is still missing or unexplained once the window has passed."""
    window = timedelta(days=settlement_settings().payout_arrival_days
                       if window_days is None else window_days)
    now = datetime.now(UTC)
    p, c = payouts.c, bank_credits.c
    with engine.begin() as conn:
        as_of = conn.execute(select(func.max(bank_statements.c.covers_to))).scalar()
        waiting = conn.execute(select(p.id, p.provider, p.reference, p.currency, p.amount_minor,
                                      p.paid_on).where(p.bank_credit_id.is_(None))
                               .order_by(p.paid_on, p.id)).all()
        loose = conn.execute(select(c.id, c.booked_on, c.amount_minor, c.currency, c.reference,
                                    c.counterparty).where(c.payout_id.is_(None))
                             .order_by(c.booked_on, c.id)).all()
        taken: set[str] = set()
        matched = 0
        for payout in waiting:
            if payout.amount_minor <= 0:
                continue  # nothing to arrive (a negative balance is debited, not paid out)
            candidates = [cr for cr in loose if cr.id not in taken
                          and cr.currency == payout.currency
                          and payout.paid_on <= cr.booked_on <= payout.paid_on + window]
            by_reference = [cr for cr in candidates
                            if payout.reference.lower() in cr.reference.lower()]
            by_amount = [cr for cr in candidates if cr.amount_minor == payout.amount_minor]
            picked = by_reference or by_amount
            if not picked:
                continue
            chosen = picked[0]
            taken.add(chosen.id)
            matched += 1
            conn.execute(update(payouts).where(p.id == payout.id).values(
                bank_credit_id=chosen.id, arrived_on=chosen.booked_on, updated_at=now))
            conn.execute(update(bank_credits).where(c.id == chosen.id)
                         .values(payout_id=payout.id))
        found = _bank_breaks(conn, as_of, window)
        opened, closed = record_breaks(conn, found, BANK_KINDS, None, actor, now)
    return BankMatch(matched, as_of, opened, closed)


def _bank_breaks(conn: Connection, as_of: date | None, window: timedelta,
                 ) -> list[tuple[date, Break]]:
    p, c = payouts.c, bank_credits.c
    found: list[tuple[date, Break]] = []
    for row in conn.execute(select(p.id, p.provider, p.reference, p.currency, p.amount_minor,
                                   p.paid_on, c.amount_minor.label("arrived"))
                            .join(bank_credits, c.id == p.bank_credit_id)
                            .where(c.amount_minor != p.amount_minor)):
        found.append((row.paid_on, Break("payout_amount_mismatch", row.provider, row.reference,
                                         None, row.currency, row.amount_minor, row.arrived,
                                         row.currency, row.id)))
    if as_of is None:
        return found
    for late in conn.execute(select(p.id, p.provider, p.reference, p.currency, p.amount_minor,
                                    p.paid_on).where(p.bank_credit_id.is_(None),
                                                    p.amount_minor > 0,
                                                    p.paid_on < as_of - window)):
        found.append((late.paid_on, Break("payout_missing", late.provider, late.reference,
                                          None, late.currency, late.amount_minor, None,
                                          late.currency, late.id)))
    for credit in conn.execute(select(c.id, c.entry_ref, c.booked_on, c.amount_minor,
                                      c.currency).where(c.payout_id.is_(None),
                                                        c.booked_on < as_of - window)):
        found.append((credit.booked_on, Break("bank_credit_unmatched", BANK, credit.entry_ref,
                                              None, credit.currency, None, credit.amount_minor,
                                              credit.currency, credit.id)))
    return found


# --- writing (the sandbox's bank) ------------------------------------------------------------

CAMT_NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


def render_camt053(account: str, credits: list[Credit], covers_to: date,
                   statement_id: str) -> bytes:
    """A camt.053.001.02 statement with one booked credit entry per credit, its period ending
    `covers_to`."""
    first = min((c.booked_on for c in credits), default=covers_to)
    entries = "".join(
        f"<Ntry><NtryRef>{escape(c.entry_ref)}</NtryRef>"
        f"<Amt Ccy=\"{c.currency}\">{major_text(c.amount_minor, c.currency)}</Amt>"
        f"<CdtDbtInd>CRDT</CdtDbtInd>"
        f"<Sts>BOOK</Sts><BookgDt><Dt>{c.booked_on.isoformat()}</Dt></BookgDt>"
        f"<ValDt><Dt>{c.booked_on.isoformat()}</Dt></ValDt>"
        f"<AcctSvcrRef>{escape(c.entry_ref)}</AcctSvcrRef>"
        f"<NtryDtls><TxDtls><RltdPties><Dbtr><Nm>{escape(c.counterparty)}</Nm></Dbtr>"
        f"</RltdPties><RmtInf><Ustrd>{escape(c.reference)}</Ustrd></RmtInf></TxDtls>"
        f"</NtryDtls></Ntry>" for c in credits)
    return (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"{CAMT_NAMESPACE}\">"
            f"<BkToCstmrStmt><GrpHdr><MsgId>{escape(statement_id)}</MsgId>"
            f"<CreDtTm>{covers_to.isoformat()}T23:59:59</CreDtTm></GrpHdr>"
            f"<Stmt><Id>{escape(statement_id)}</Id>"
            f"<FrToDt><FrDtTm>{first.isoformat()}T00:00:00</FrDtTm>"
            f"<ToDtTm>{covers_to.isoformat()}T23:59:59</ToDtTm></FrToDt>"
            f"<Acct><Id><IBAN>{escape(account)}</IBAN></Id></Acct>{entries}</Stmt>"
            f"</BkToCstmrStmt></Document>\n").encode()
