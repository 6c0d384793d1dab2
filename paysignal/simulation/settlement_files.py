"""Each provider's settlement files for a simulated run (the sandbox's side of reconciliation),
with known discrepancies and their ground truth."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from engine.settlement.expected import expected_settlement
from engine.settlement.formats import SPECS, SettlementLine
from engine.settlement.reconcile import BREAK_KINDS
from engine.settlement.run import RunReport
from engine.storage.tables import payments

DISCREPANCY_KINDS = BREAK_KINDS  # what can be injected is exactly what reconciliation detects
_SAME_EXPONENT = {"USD": "EUR", "EUR": "GBP", "GBP": "USD", "JPY": "KRW", "KWD": "BHD"}


def write_settlement_files(engine: Engine, directory: Path, *, discrepancies: int = 0,
                           seed: int = 0, providers: list[str] | None = None,
                           payment_ids: Collection[str] | None = None) -> list[dict[str, str]]:
    """Write DIR/<provider>_<YYYY-MM-DD>.<ext> for every settlement day plus ground_truth.json.
    With `payment_ids`, the files settle only those payments (one simulated run's: the
    payments of earlier runs were settled by their own files). Returns the ground truth:
    [{"kind", "provider", "provider_reference"}]."""
    rng = random.Random(f"settlements|{seed}")
    only = set(payment_ids) if payment_ids is not None else None
    lines = [SettlementLine(e.provider, e.provider_reference, e.payment_id, e.kind,
                            e.amount_minor, e.fee_minor, e.currency, e.expected_on)
             for e in expected_settlement(engine)
             if (not providers or e.provider in providers)
             and (only is None or e.payment_id in only)]
    truth: list[dict[str, str]] = []
    charges = [i for i, line in enumerate(lines) if line.kind == "charge"]
    rng.shuffle(charges)
    uncaptured = [u for u in _uncaptured_with_reference(engine, providers)
                  if only is None or u[2] in only]
    rng.shuffle(uncaptured)
    removed: set[int] = set()
    added: list[SettlementLine] = []
    for n in range(discrepancies):
        kind = DISCREPANCY_KINDS[n % len(DISCREPANCY_KINDS)]
        if kind == "status_mismatch" and not uncaptured:
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
                provider, ref, pid, amount, currency = uncaptured.pop()
                line = SettlementLine(provider, ref, pid, "charge", amount, 0, currency,
                                      template.settled_on)
            added.append(line)
            truth.append({"kind": kind, "provider": line.provider,
                          "provider_reference": line.provider_reference})
            continue
        if not charges:
            break
        i = charges.pop()
        line = lines[i]
        if kind == "missing_in_provider":
            removed.add(i)
        elif kind == "amount_mismatch":
            lines[i] = replace(line, amount_minor=line.amount_minor + rng.choice((-1, 1)) *
                               rng.randint(1, max(1, line.amount_minor // 10)))
        elif kind == "currency_mismatch":
            lines[i] = replace(line, currency=_SAME_EXPONENT.get(line.currency, "USD"))
        elif kind == "fee_mismatch":
            lines[i] = replace(line, fee_minor=line.fee_minor + rng.randint(1, 50))
        elif kind == "duplicate_charge":
            added.append(line)
        elif kind == "late_settlement":
            lines[i] = replace(line, settled_on=line.settled_on + timedelta(days=1))
        truth.append({"kind": kind, "provider": line.provider,
                      "provider_reference": line.provider_reference})
    final = [line for i, line in enumerate(lines) if i not in removed] + added
    by_file: dict[tuple[str, date], list[SettlementLine]] = defaultdict(list)
    for line in lines:  # every provider-day gets a file, even one whose lines were all removed
        by_file[(line.provider, line.settled_on)]
    for line in final:
        by_file[(line.provider, line.settled_on)].append(line)
    directory.mkdir(parents=True, exist_ok=True)
    for (provider, day), day_lines in sorted(by_file.items()):
        spec = SPECS[provider]
        (directory / spec.file_name(day)).write_bytes(spec.render(day_lines))
    (directory / "ground_truth.json").write_text(json.dumps(truth, indent=2))
    return truth


def _uncaptured_with_reference(engine: Engine, providers: list[str] | None,
                               ) -> list[tuple[str, str, str, int, str]]:
    """Payments the provider knows (they have a reference) that must not settle."""
    query = (select(payments.c.provider, payments.c.provider_reference, payments.c.id,
                    payments.c.amount_minor, payments.c.currency)
             .where(payments.c.provider_reference.is_not(None),
                    payments.c.state.in_(("voided", "declined")))
             .order_by(payments.c.id))
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(query)]
    return [r for r in rows if not providers or r[0] in providers]


@dataclass(frozen=True)
class Score:
    """A reconciliation run against the ground truth of the files it read."""
    injected: int
    missed: list[tuple[str, str, str]]  # (kind, provider, provider reference)
    false: list[tuple[str, str, str]]

    @property
    def exact(self) -> bool:
        return not self.missed and not self.false

    def describe(self) -> str:
        found = ("every one found" if not self.missed
                 else f"{len(self.missed)} missed ({_kinds(self.missed)})")
        false = ("no false breaks" if not self.false
                 else f"{len(self.false)} false breaks ({_kinds(self.false)})")
        return f"{self.injected} discrepancies injected: {found}, {false}"


def _kinds(keys: list[tuple[str, str, str]]) -> str:
    counts = Counter(kind for kind, _, _ in keys)
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


def score(truth: list[dict[str, str]], report: RunReport) -> Score:
    """Recall and precision: every injected discrepancy must be among the day's breaks, and
    every break the run opened (and did not close again) must be an injected one."""
    expected = {(t["kind"], t["provider"], t["provider_reference"]) for t in truth}
    present = {(b.kind, b.provider, b.provider_reference) for d in report.days for b in d.breaks}
    opened = {(b.kind, b.provider, b.provider_reference) for b in report.opened()}
    return Score(len(expected), sorted(expected - present), sorted(opened - expected))
