"""Payments: the service merchants call, the Idempotency-Key protocol, the after-settlement
policy, unknown-outcome resolution, provider notifications, rollout toggles and merchants."""
