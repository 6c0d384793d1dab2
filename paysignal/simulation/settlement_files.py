"""Each provider's settlement reports for a simulated run, written from the sandbox's own books
in each provider's real format (the sandbox's side of reconciliation), with known discrepancies
and their ground truth."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from engine.domain.settlement_lines import (
    CHARGE,
    CHARGEBACK,
    CHARGEBACK_REVERSAL,
    REFUND,
    SettlementLine,
    digest,
)
from engine.domain.states import AWAITING_ANSWER_STATES
from engine.files import write_atomically
from engine.providers.registry import PROVIDERS
from engine.providers.sandbox import BookEntry
from engine.providers.sandbox.registry import SANDBOXED
from engine.settlement.bank import BANK, Credit, render_camt053
from engine.settlement.kinds import kinds_of
from engine.settlement.run import RunReport
from engine.settlement.settings import settlement_settings
from engine.storage.tables import payments

# what the reports and the bank statement can carry that the ledger does not: every break kind
# of lines, disputes, payouts and the bank
DISCREPANCY_KINDS = kinds_of("line", "dispute", "payout", "bank")
LINE_KINDS = kinds_of("line", "dispute")
_SAME_EXPONENT = {"USD": "EUR", "EUR": "GBP", "GBP": "USD", "JPY": "KRW", "KWD": "BHD"}
SETTLEMENT_DELAY = timedelta(days=1)  # the sandbox settles each movement the next day (UTC)


def book_lines(entries: Iterable[BookEntry]) -> list[SettlementLine]:
    """What the sandbox's books settle: each capture (with the fee its provider's pricing
    charges) and each refund, on the day after it happened; in the order they happened."""
    out = []
    for e in sorted(entries, key=lambda e: e.at):
        if e.status != "succeeded":
            continue
        captured = e.operation == "capture" or (e.operation == "authorize" and e.captured)
        pricing = PROVIDERS[e.provider].published_pricing  # what the provider charges
        if captured:
            kind, amount, fee = CHARGE, e.amount_minor, pricing.capture_fee(e.amount_minor)
        elif e.operation == "refund":
            kind, amount, fee = REFUND, -e.amount_minor, pricing.refund_fee(e.amount_minor)
        elif e.operation == "chargeback":
            kind, amount, fee = CHARGEBACK, -e.amount_minor, pricing.dispute_fee_minor
        elif e.operation == "chargeback_reversal":
            kind, amount, fee = CHARGEBACK_REVERSAL, e.amount_minor, 0
        else:
            continue
        day = datetime.fromtimestamp(e.at, UTC).date() + SETTLEMENT_DELAY
        out.append(SettlementLine(e.provider, "", e.provider_reference, e.payment_ref or None,
                                  kind, amount, fee, e.currency, day, amount - fee, e.currency))
    return out


def partial_writer(data: bytes) -> Callable[[Path], object]:
    return lambda partial: partial.write_bytes(data)


def _known_not_settled(entries: list[BookEntry]) -> list[BookEntry]:
    """Authorizations the provider voided or declined: known to it, never to settle."""
    voided = {(e.provider, e.provider_reference) for e in entries if e.operation == "void"
              and e.status == "succeeded"}
    return [e for e in entries if e.operation == "authorize" and (
        e.status == "declined" or (not e.captured and (e.provider, e.provider_reference)
                                   in voided))]


def write_settlement_files(entries: list[BookEntry], directory: Path, *,
                           discrepancies: int = 0, seed: int = 0,
                           providers: list[str] | None = None,
                           payment_ids: Collection[str] | None = None,
                           day: date | None = None,
                           bank_statement: bool = True,
                           unnotified_disputes: Collection[tuple[str, str]] = (),
                           ) -> list[dict[str, str]]:
    """Write each provider's own settlement report for every settlement day of the sandbox's
    books (`entries`), plus DIR/ground_truth.json. With `payment_ids`, only those payments'
    movements settle (one simulated run's: earlier runs' payments were settled by their own
    files); with `day`, only that settlement day's. With `bank_statement`, the bank's camt.053
    statement of the payouts the reports state is written too. `unnotified_disputes`:
    (provider, reference) of disputes whose notifications the sandbox lost; their chargeback
    lines may be found as `dispute_not_in_ledger` (true findings, marked "possible"). Returns
    the ground truth: [{"kind", "provider", "provider_reference", "payment_id"?, "possible"?}]."""
    rng = random.Random(f"settlements|{seed}")
    only = set(payment_ids) if payment_ids is not None else None
    chosen = [e for e in entries if (not providers or e.provider in providers)
              and (only is None or e.payment_ref in only)]
    lines = [line for line in book_lines(chosen) if day is None or line.settled_on == day]
    truth: list[dict[str, str]] = []
    charges = [i for i, line in enumerate(lines) if line.kind == CHARGE]
    per_day = Counter((line.provider, line.settled_on) for line in lines)
    rng.shuffle(charges)
    unsettled = _known_not_settled(chosen)
    rng.shuffle(unsettled)
    removed: set[int] = set()
    added: list[SettlementLine] = []
    money_loop: list[str] = []
    for n in range(discrepancies):
        kind = DISCREPANCY_KINDS[n % len(DISCREPANCY_KINDS)]
        if kind not in LINE_KINDS:
            money_loop.append(kind)
            continue
        if kind == "status_mismatch" and not unsettled:
            kind = "amount_mismatch"
        if kind in ("missing_in_ledger", "status_mismatch"):
            template = lines[charges[0]] if charges else None
            if template is None:
                break
            if kind == "missing_in_ledger":
                # named after the template's payment, so no two runs invent the same reference
                line = replace(template, provider_reference=f"unknown_{template.payment_reference}_{n}",
                               payment_reference=None, amount_minor=rng.randint(100, 9_999))
            else:
                u = unsettled.pop()
                line = SettlementLine(u.provider, "", u.provider_reference, u.payment_ref,
                                      CHARGE, u.amount_minor, 0, u.currency, template.settled_on)
            added.append(line)
            truth.append({"kind": kind, "provider": line.provider,
                          "provider_reference": line.provider_reference,
                          "payment_id": line.payment_reference or ""})
            continue
        if not charges:
            break
        i = charges.pop()
        if kind in ("missing_in_provider", "late_settlement"):
            # never the only line of its provider-day: a day's report with no line at all
            # names no day to reconcile (the engine learns days from the lines it imports)
            i = next((c for c in [i, *reversed(charges)]
                      if per_day[(lines[c].provider, lines[c].settled_on)] > 1), i)
            if i in charges:
                charges.remove(i)
            per_day[(lines[i].provider, lines[i].settled_on)] -= 1
        line = lines[i]
        if kind == "dispute_not_in_ledger":  # a chargeback nobody told the engine about
            line = replace(line, kind=CHARGEBACK, amount_minor=-line.amount_minor,
                           fee_minor=PROVIDERS[line.provider].published_pricing.dispute_fee_minor)
            added.append(line)
        elif kind == "missing_in_provider":
            removed.add(i)
        elif kind == "amount_mismatch":
            lines[i] = replace(line, amount_minor=line.amount_minor + rng.choice((-1, 1)) *
                               rng.randint(1, max(1, line.amount_minor // 10)))
        elif kind == "currency_mismatch":
            lines[i] = replace(line, currency=_SAME_EXPONENT.get(line.currency, "USD"))
        elif kind == "fee_mismatch":
            # beyond the default tolerance (1 minor unit) of the configured pricing
            lines[i] = replace(line, fee_minor=line.fee_minor + rng.randint(2, 50))
        elif kind == "duplicate_charge":
            added.append(line)
        elif kind == "late_settlement" and day is None:
            lines[i] = replace(line, settled_on=line.settled_on + timedelta(days=1))
        elif kind == "late_settlement":  # one day's files: the line is not in them at all
            removed.add(i)
            kind = "missing_in_provider"
        truth.append({"kind": kind, "provider": line.provider,
                      "provider_reference": line.provider_reference,
                      "payment_id": line.payment_reference or ""})
    final = [line for i, line in enumerate(lines) if i not in removed] + added
    unnotified = set(unnotified_disputes)
    truth += [{"kind": "dispute_not_in_ledger", "provider": x.provider,
               "provider_reference": x.provider_reference,
               "payment_id": x.payment_reference or "", "possible": "true"}
              for x in {line for line in final if line.kind in (CHARGEBACK, CHARGEBACK_REVERSAL)
                        and (line.provider, line.provider_reference) in unnotified}]
    by_file: dict[tuple[str, date], list[SettlementLine]] = defaultdict(list)
    for line in lines:  # every provider-day gets a file, even one whose lines were all removed
        by_file[(line.provider, line.settled_on)]
    for line in final:
        by_file[(line.provider, line.settled_on)].append(line)
    directory.mkdir(parents=True, exist_ok=True)
    offsets: dict[tuple[str, date], dict[str, int]] = defaultdict(dict)
    mismatched: set[tuple[str, date, str]] = set()
    if "payout_lines_mismatch" in money_loop:
        groups = sorted({(x.provider, x.settled_on, x.currency) for x in final})
        for _ in range(money_loop.count("payout_lines_mismatch")):
            if groups:
                provider, on, currency = groups.pop(rng.randrange(len(groups)))
                offsets[(provider, on)][currency] = -rng.randint(1, 500)  # a withheld amount
                mismatched.add((provider, on, currency))
    paid: list[Payout] = []
    for (provider, on), day_lines in sorted(by_file.items()):
        report = PROVIDERS[provider].settlement_report
        written = SANDBOXED[provider].render_report(day_lines, on, offsets.get((provider, on)))
        for name, data in written.items():
            write_atomically(directory / name, partial_writer(data))
            paid += [Payout(provider, str(x.payout_reference), x.currency, -x.amount_minor, on)
                     for x in report.parse(data, name).lines if x.kind == "payout"]
    truth += [{"kind": "payout_lines_mismatch", "provider": p.provider,
               "provider_reference": p.reference} for p in paid
              if (p.provider, p.paid_on, p.currency) in mismatched]
    if bank_statement and paid:
        truth += _write_bank_statement(directory, paid, money_loop, rng)
    (directory / "ground_truth.json").write_text(json.dumps(truth, indent=2))
    return truth


@dataclass(frozen=True, slots=True)
class Payout:
    provider: str
    reference: str
    currency: str
    amount_minor: int
    paid_on: date


SANDBOX_IBAN = "NL91ABNA0417164300"


def _write_bank_statement(directory: Path, paid: list[Payout], money_loop: list[str],
                          rng: random.Random) -> list[dict[str, str]]:
    """The bank's camt.053 statement: each payout arrives the next day, referenced by the
    payout's id, except the injected missing, short and stray ones. Its period runs past the
    last payout by the arrival window, so a missing payout is known to be missing."""
    arriving = [p for p in paid if p.amount_minor > 0]
    rng.shuffle(arriving)
    truth: list[dict[str, str]] = []
    credits: list[Credit] = []
    missing = money_loop.count("payout_missing")
    short = money_loop.count("payout_amount_mismatch")
    for i, p in enumerate(arriving):
        if i < missing:
            truth.append({"kind": "payout_missing", "provider": p.provider,
                          "provider_reference": p.reference})
            continue
        amount = p.amount_minor
        if i < missing + short and amount > 1:
            amount -= rng.randint(1, min(300, amount - 1))  # the bank's charge on the transfer
            truth.append({"kind": "payout_amount_mismatch", "provider": p.provider,
                          "provider_reference": p.reference})
        credits.append(Credit(f"SBX{digest(p.provider, p.reference, p.currency)}",
                              p.paid_on + timedelta(days=1), amount, p.currency,
                              f"{p.provider.upper()} PAYOUT {p.reference}",
                              p.provider.capitalize()))
    first = min(p.paid_on for p in paid)
    for n in range(money_loop.count("bank_credit_unmatched")):
        stray = Credit(f"SBX{digest('stray', n, *sorted(p.reference for p in paid))}", first,
                       rng.randint(1_000, 90_000), rng.choice(sorted({p.currency for p in paid})),
                       f"INVOICE {rng.randint(1000, 9999)} ACME GMBH", "ACME GmbH")
        credits.append(stray)
        truth.append({"kind": "bank_credit_unmatched", "provider": BANK,
                      "provider_reference": stray.entry_ref})
    covers_to = max(p.paid_on for p in paid) + timedelta(
        days=settlement_settings().payout_arrival_days + 1)
    credits.sort(key=lambda c: (c.booked_on, c.entry_ref))
    data = render_camt053(SANDBOX_IBAN, credits, covers_to, f"STMT-{covers_to:%Y%m%d}")
    write_atomically(directory / f"camt053_{covers_to.isoformat()}.xml", partial_writer(data))
    return truth


@dataclass(frozen=True)
class Score:
    """A reconciliation run against the ground truth of the files it read."""
    injected: int
    missed: list[tuple[str, str, str]]  # (kind, provider, provider reference)
    false: list[tuple[str, str, str]]
    in_flight: int = 0  # true breaks about payments the engine has not resolved yet

    @property
    def exact(self) -> bool:
        return not self.missed and not self.false

    def describe(self) -> str:
        found = ("every one found" if not self.missed
                 else f"{len(self.missed)} missed ({_kinds(self.missed)})")
        false = ("no false breaks" if not self.false
                 else f"{len(self.false)} false breaks ({_kinds(self.false)})")
        flight = (f"; {self.in_flight} more true findings (payments still unknown or awaiting "
                  "confirmation that the provider settled, disputes whose notifications were "
                  "lost)" if self.in_flight else "")
        return f"{self.injected} discrepancies injected: {found}, {false}{flight}"


def _kinds(keys: list[tuple[str, str, str]]) -> str:
    counts = Counter(kind for kind, _, _ in keys)
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


def in_flight_payment_ids(engine: Engine) -> set[str]:
    """Payments the engine still holds without a final answer (unknown, awaiting
    confirmation): the provider may have settled them, and a break about one is a true
    finding the injected ground truth cannot list."""
    with engine.connect() as conn:
        return set(conn.execute(select(payments.c.id).where(
            payments.c.state.in_(sorted(s.value for s in AWAITING_ANSWER_STATES)))).scalars())


def grade(truth: list[dict[str, str]], breaks: Collection[tuple[str, str, str, str | None]],
          in_flight: Collection[str] = frozenset(),
          ) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]], int]:
    """(missed, false, explained) of `breaks` — (kind, provider, provider reference, payment
    id) — against the injected `truth`. A payment the engine still holds as unknown or awaiting
    confirmation is a discrepancy of its own (the provider settled what the engine has not
    resolved): a break about it that was not injected is a true finding (`explained`), and an
    injected discrepancy on it cannot be graded (the ledger has nothing settled to compare).
    A "possible" truth (a dispute whose notifications were lost) may be found or not."""
    possible = {(t["kind"], t["provider"], t["provider_reference"]) for t in truth
                if t.get("possible")}
    expected = {(t["kind"], t["provider"], t["provider_reference"]) for t in truth
                if not t.get("possible")}
    present = {(k, p, r) for k, p, r, _ in breaks}
    unresolved = {(t["kind"], t["provider"], t["provider_reference"]) for t in truth
                  if t.get("payment_id") and t["payment_id"] in in_flight}
    missed = sorted(expected - present - unresolved)
    unexpected = {(k, p, r): pid for k, p, r, pid in breaks if (k, p, r) not in expected}
    explained = {key for key, pid in unexpected.items() if pid in in_flight or key in possible}
    return missed, sorted(set(unexpected) - explained), len(explained)


def score(truth: list[dict[str, str]], report: RunReport,
          in_flight: Collection[str] = frozenset()) -> Score:
    """Recall and precision of a run (see `grade`): every injected discrepancy among the
    breaks, and every break the run opened (and did not close again) an injected one."""
    seen = [(b.kind, b.provider, b.provider_reference, b.payment_id)
            for d in report.days for b in d.breaks]
    opened = [(b.kind, b.provider, b.provider_reference, b.payment_id) for b in report.opened()]
    missed, _, _ = grade(truth, seen + opened, in_flight)
    _, false, explained = grade(truth, opened, in_flight)
    return Score(injected_count(truth), missed, false, explained)


def injected_count(truth: list[dict[str, str]]) -> int:
    """The discrepancies injected (a "possible" truth is a finding the run may make)."""
    return sum(1 for t in truth if not t.get("possible"))
