"""paysignal slo (built in a later issue)."""
