"""Every alert paysignal can raise, as data: name, severity, owner team, condition, and the
runbook shipped under alerts/runbooks/<name>.md. Detectors, routing, the Prometheus rules and
the README read it; a test fails if an alert lacks a runbook or a runbook is orphaned."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RUNBOOKS_DIR = Path(__file__).parent / "runbooks"
Severity = Literal["page", "ticket", "info"]
Team = Literal["payments", "finance", "payments+finance"]


@dataclass(frozen=True, slots=True)
class AlertSpec:
    name: str
    severity: Severity
    team: Team
    condition: str
    impact: str

    @property
    def runbook(self) -> Path:
        return RUNBOOKS_DIR / f"{self.name}.md"


CATALOGUE: tuple[AlertSpec, ...] = (
    AlertSpec("SLOBurnRatePage", "page", "payments",
              "an SLO burns its budget at the page rate over both windows of a tier "
              "(14.4x over 1h and 5m, or 6x over 6h and 30m)",
              "customers are failing to pay now; at this rate the 30-day budget is gone in "
              "about two days"),
    AlertSpec("SLOBurnRateTicket", "ticket", "payments",
              "an SLO burns its budget at the ticket rate (3x over 1d and 2h, or 1x over 3d "
              "and 6h)", "the objective will be missed this window unless something changes"),
    AlertSpec("UnknownOutcomesStale", "page", "payments",
              "payments whose provider outcome is unknown for longer than the threshold "
              "(default 15 minutes)",
              "customers may have been charged without an order, or be charged twice on retry"),
    AlertSpec("ConfirmationsLate", "ticket", "payments",
              "operations a provider accepted for processing (Adyen's \"received\") still "
              "unconfirmed by its notification after the threshold (default 30 minutes)",
              "captures, voids or refunds may not have happened; money the merchant expects "
              "is not moving"),
    AlertSpec("CustomerActionsStuck", "ticket", "payments",
              "payments still waiting for their customer (3-D Secure, a redirect, an "
              "approval) past the expiry timeout and its grace (default 75 minutes): the "
              "worker could not cancel them at the provider",
              "the customer may still complete and be charged for an order the merchant "
              "treats as unpaid; the payments hold up the merchant's checkout"),
    AlertSpec("DuplicateChargeFound", "page", "payments+finance",
              "a customer was charged twice: a duplicate_charge reconciliation break is open",
              "money taken twice from a customer; a refund and an apology are owed"),
    AlertSpec("LedgerImbalance", "page", "payments+finance",
              "a journal transaction's debits and credits differ",
              "the books are wrong: balances, settlements and reports cannot be trusted"),
    AlertSpec("ReconciliationBreaksAged", "ticket", "finance",
              "open reconciliation breaks older than 48 hours, or with more than the amount "
              "threshold at stake", "the provider-day cannot be closed; money is unaccounted for"),
    AlertSpec("OutboxBacklog", "page", "payments",
              "the oldest unpublished outbox event is older than the threshold (default 5 min)",
              "downstream systems (fulfilment, notifications, finance feeds) are stale"),
    AlertSpec("WebhookSignatureFailures", "ticket", "payments",
              "provider notifications with bad signatures above the threshold in the last 15 "
              "minutes", "a secret was rotated without us, or someone is forging notifications"),
    AlertSpec("DisputeRateHigh", "ticket", "payments+finance",
              "a provider's disputes this month reach the card schemes' early-warning level: "
              "0.65 % of the month's captured payments and 75 disputes by default (Visa's "
              "Dispute Monitoring Program)",
              "fines and higher fees follow if the standard thresholds (0.9 % Visa, 1.0 %–1.5 % "
              "Mastercard) are crossed; the acquirer may close the account"),
    AlertSpec("RetryBudgetExhausted", "ticket", "payments",
              "retries to a provider were refused because the retry budget was spent",
              "a provider is failing enough that paysignal stopped retrying it; payments fail "
              "fast instead of piling on"),
)

BY_NAME: dict[str, AlertSpec] = {a.name: a for a in CATALOGUE}


def catalogue_markdown() -> str:
    lines = ["| alert | severity | team | fires when | runbook |", "|---|---|---|---|---|"]
    lines += [f"| `{a.name}` | {a.severity} | {a.team} | {a.condition} | "
              f"[runbook](runbooks/{a.name}.md) |" for a in CATALOGUE]
    return "\n".join(lines)
