"""paysignal engine: the idempotent payment core."""
