"""The one list of reconciliation break kinds: what each means, who owns it, and the first step of
its runbook. Reconciliation, the sandbox's injected discrepancies, the dashboard, the CLI and the
docs all read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Team = Literal["payments", "finance", "payments+finance"]
Level = Literal["line", "payout", "bank", "dispute"]


@dataclass(frozen=True, slots=True)
class BreakKind:
    name: str
    level: Level  # what is compared: a line with the ledger, a payout with its lines, ...
    owner: Team
    meaning: str
    runbook: str  # the first thing to do


CATALOGUE: tuple[BreakKind, ...] = (
    BreakKind("missing_in_provider", "line", "finance",
              "a capture or refund in our ledger is not in the provider's report of its day",
              "wait one more report (it may settle late), then ask the provider with the "
              "payment's reference"),
    BreakKind("missing_in_ledger", "line", "payments+finance",
              "the provider settled money for a reference our ledger does not know",
              "look the reference up at the provider; a charge we never recorded is a payment to "
              "book or refund"),
    BreakKind("amount_mismatch", "line", "finance",
              "the provider settled another amount than our ledger holds",
              "compare with the provider's dashboard; a partial capture or refund we missed "
              "is the usual cause"),
    BreakKind("currency_mismatch", "line", "payments+finance",
              "the provider settled the payment in another currency",
              "check the merchant account's settlement currency and any conversion the "
              "provider applied"),
    BreakKind("status_mismatch", "line", "payments",
              "the provider settled a payment we hold as voided, declined or still unknown",
              "resolve the payment's outcome (paysignal payments show); a charge we think "
              "failed means the customer paid"),
    BreakKind("duplicate_charge", "line", "payments+finance",
              "the same payment was settled twice: the customer was charged twice",
              "refund the second charge and find which retry caused it (DuplicateChargeFound "
              "runbook)"),
    BreakKind("fee_mismatch", "line", "finance",
              "the provider's fee differs from what its configured pricing predicts, beyond "
              "the tolerance",
              "check the pricing configured for the provider (PAYSIGNAL_<P>_FEE_BPS, "
              "_FEE_FIXED_MINOR) against the contract; raise a fee dispute if the contract "
              "holds"),
    BreakKind("late_settlement", "line", "finance",
              "a line settled on a later day than expected (its missing break is closed)",
              "nothing to recover; note the provider's delay if it recurs"),
    BreakKind("payout_lines_mismatch", "payout", "finance",
              "a payout's amount is not the net of the lines it pays out",
              "ask the provider for the payout's itemization; a withheld reserve or an "
              "unreported fee is the usual cause"),
    BreakKind("payout_missing", "bank", "finance",
              "a payout has not arrived at the bank within the expected number of days",
              "check the bank statement import is current, then ask the provider for the "
              "payout's trace reference"),
    BreakKind("payout_amount_mismatch", "bank", "finance",
              "the bank credit matched to a payout has another amount",
              "compare the bank's and the provider's amounts; bank charges on incoming "
              "transfers are the usual cause"),
    BreakKind("bank_credit_unmatched", "bank", "finance",
              "money arrived at the bank that no payout explains",
              "identify the sender from the statement's remittance information; book it or "
              "return it"),
    BreakKind("dispute_not_in_ledger", "dispute", "payments+finance",
              "the provider's report withdrew (or returned) disputed money that no "
              "notification told us of; the dispute is booked from the line (if the payment "
              "is ours and captured) and this stays open until a person closes it",
              "answer the dispute in the provider's dashboard before its deadline, then find "
              "why its notification was lost (WebhookSignatureFailures, endpoint config)"),
)

BY_NAME: dict[str, BreakKind] = {k.name: k for k in CATALOGUE}
BREAK_KINDS: tuple[str, ...] = tuple(k.name for k in CATALOGUE)


def kinds_of(*levels: Level) -> tuple[str, ...]:
    return tuple(k.name for k in CATALOGUE if k.level in levels)


def catalogue_markdown() -> str:
    rows = ["| kind | compares | owner | means | first step |", "|---|---|---|---|---|"]
    rows += [f"| `{k.name}` | {k.level} | {k.owner} | {k.meaning} | {k.runbook} |"
             for k in CATALOGUE]
    return "\n".join(rows)
