"""paysignal alerts: the alert catalogue with runbooks, detectors, the routing tree, silences,
receivers and the delivery log."""
