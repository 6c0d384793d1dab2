"""paysignal alerts (built in a later issue)."""
