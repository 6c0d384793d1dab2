"""The sandbox's PayPal test values: vault tokens that force a decline or a fault, what each
does, and the variables that point the connector at the sandbox."""

from __future__ import annotations

from engine.providers.paypal.config import (
    CLIENT_ID_VARIABLE,
    CLIENT_SECRET_VARIABLE,
    DECLINES,
    NAME,
    WEBHOOK_ID_VARIABLE,
)
from engine.providers.sandbox import (
    Fate,
)

SANDBOX_DECLINES = {"sandbox-insufficient-funds": "5120", "sandbox-do-not-honor": "0500",
                    "sandbox-expired": "5400"}
SILENT = "sandbox-unknown-forever"  # authorized, times out, and never answered about again
SANDBOX_FAULTS = {SILENT: Fate.TIMEOUT_AFTER,
                  "sandbox-timeout-after-charge": Fate.TIMEOUT_AFTER,
                  "sandbox-timeout-before-charge": Fate.TIMEOUT_BEFORE,
                  "sandbox-server-error": Fate.SERVER_ERROR}
TEST_PAYMENT_METHODS = {
    "7a8b9c0d": "any vault token: approved (subject to the sandbox's fault profile)",
    **{k: f"sandbox only: declined, processor response {v} ({DECLINES[v]})"
       for k, v in SANDBOX_DECLINES.items()},
    "sandbox-timeout-after-charge": "sandbox only: authorized, then the answer times out",
    "sandbox-timeout-before-charge": "sandbox only: the first request with an id times out "
                                     "before anything happens",
    "sandbox-server-error": "sandbox only: a 500 before anything happens",
    SILENT: "sandbox only: authorized, times out, never answered about nor notified",
}


# --- the emulator: PayPal's side of the sandbox --------------------------------------------


SANDBOX_METHODS = {
    "approve": "7a8b9c0d",
    "decline_insufficient_funds": "sandbox-insufficient-funds",
    "decline_do_not_honor": "sandbox-do-not-honor",
    "timeout_after_charge": "sandbox-timeout-after-charge",
    "timeout_before_charge": "sandbox-timeout-before-charge",
    "server_error": "sandbox-server-error",
    "unknown_forever": SILENT,
}


def sandbox_environment(base_url: str, webhook_credential: str) -> dict[str, str]:
    return {f"PAYSIGNAL_{NAME.upper()}_BASE_URL": base_url,
            CLIENT_ID_VARIABLE: "paysignal-sandbox-client",
            CLIENT_SECRET_VARIABLE: "paysignal-sandbox-secret",
            WEBHOOK_ID_VARIABLE: webhook_credential}
