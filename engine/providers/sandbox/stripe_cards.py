"""Stripe's test payment methods the sandbox knows (docs.stripe.com/testing), and its own that
force a fault (a real Stripe account knows none of those)."""

from __future__ import annotations

from engine.providers.sandbox.protocol import Fate

DECLINES = {  # Stripe's documented test PaymentMethods that decline: (code, decline_code)
    "pm_card_chargeDeclined": ("card_declined", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": ("card_declined", "insufficient_funds"),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", "expired_card"),
    "pm_card_chargeDeclinedFraudulent": ("card_declined", "fraudulent"),
}
# Sandbox-only test values that force a fault (a real Stripe account knows none of them).
SANDBOX_FAULTS = {
    "pm_card_sandbox_timeoutAfterCharge": Fate.TIMEOUT_AFTER,
    "pm_card_sandbox_timeoutBeforeCharge": Fate.TIMEOUT_BEFORE,
    "pm_card_sandbox_serverError": Fate.SERVER_ERROR,
    "pm_card_sandbox_resetAfterCharge": Fate.RESET_AFTER,
}
# Stripe's test methods whose every payment needs authentication (docs.stripe.com/testing)
AUTHENTICATION_REQUIRED = frozenset(("pm_card_authenticationRequired",
                                     "pm_card_threeDSecure2Required"))
SILENT = "pm_card_sandbox_lookupUnavailable"  # charges, times out, and is never looked up
TEST_PAYMENT_METHODS = {
    "pm_card_visa": "approved (subject to the sandbox's fault profile); any other pm_ id too",
    "pm_card_chargeDeclined": "declined: card_declined / generic_decline",
    "pm_card_chargeDeclinedInsufficientFunds": "declined: insufficient_funds",
    "pm_card_chargeDeclinedExpiredCard": "declined: expired_card",
    "pm_card_chargeDeclinedFraudulent": "declined: fraudulent",
    "pm_card_sandbox_timeoutAfterCharge": "sandbox only: charges, then the answer times out",
    "pm_card_sandbox_timeoutBeforeCharge": "sandbox only: the first request with a key times "
                                           "out without charging; a repeat goes through",
    "pm_card_sandbox_serverError": "sandbox only: a 500 with Stripe-Should-Retry: true",
    "pm_card_sandbox_resetAfterCharge": "sandbox only: charges, then the connection resets",
    "pm_card_pendingRefund": "approved; a refund answers pending and succeeds a minute later",
    "pm_card_authenticationRequired": "3-D Secure: requires_action until the customer "
                                      "authenticates (Sandbox.complete_action) or it is canceled",
    SILENT: "sandbox only: charges, times out, and every lookup fails",
}

SANDBOX_METHODS = {  # neutral behaviour -> this provider's test payment method
    "approve": "pm_card_visa",
    "decline_insufficient_funds": "pm_card_chargeDeclinedInsufficientFunds",
    "decline_do_not_honor": "pm_card_chargeDeclined",
    "timeout_after_charge": "pm_card_sandbox_timeoutAfterCharge",
    "timeout_before_charge": "pm_card_sandbox_timeoutBeforeCharge",
    "server_error": "pm_card_sandbox_serverError",
    "unknown_forever": SILENT,
}
