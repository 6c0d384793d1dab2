"""The simulated providers' settlement files, with known discrepancies and their ground truth."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from engine.settlement.expected import expected_settlement
from engine.settlement.formats import FORMATS, SettlementLine
from engine.settlement.reconcile import BREAK_KINDS
from engine.storage.tables import payments

DISCREPANCY_KINDS = BREAK_KINDS  # what can be injected is exactly what reconciliation detects
_SAME_EXPONENT = {"USD": "EUR", "EUR": "GBP", "GBP": "USD", "JPY": "KRW", "KWD": "BHD"}
EXTENSIONS = {"northwind": "csv", "southbank": "csv", "eastpay": "txt"}


def write_settlement_files(engine: Engine, directory: Path, *, discrepancies: int = 0,
                           seed: int = 0, providers: list[str] | None = None) -> list[dict[str, str]]:
    """Write DIR/<provider>_<YYYY-MM-DD>.<ext> for every settlement day plus ground_truth.json.
    Returns the ground truth: [{"kind", "provider", "provider_reference"}]."""
    rng = random.Random(f"settlements|{seed}")
    lines = [SettlementLine(e.provider, e.provider_reference, e.payment_id, e.kind,
                            e.amount_minor, e.fee_minor, e.currency, e.expected_on)
             for e in expected_settlement(engine) if not providers or e.provider in providers]
    truth: list[dict[str, str]] = []
    charges = [i for i, line in enumerate(lines) if line.kind == "charge"]
    rng.shuffle(charges)
    uncaptured = _uncaptured_with_reference(engine, providers)
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
                line = replace(template, provider_reference=f"unknown_{seed}_{n}",
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
    by_file: dict[tuple[str, object], list[SettlementLine]] = defaultdict(list)
    for line in lines:  # every provider-day gets a file, even one whose lines were all removed
        by_file[(line.provider, line.settled_on)]
    for line in final:
        by_file[(line.provider, line.settled_on)].append(line)
    directory.mkdir(parents=True, exist_ok=True)
    for (provider, day), day_lines in sorted(by_file.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        name = f"{provider}_{day}.{EXTENSIONS[provider]}"
        (directory / name).write_bytes(FORMATS[provider][0](day_lines))
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
