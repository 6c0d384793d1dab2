"""paysignal dashboard (built in a later issue)."""
