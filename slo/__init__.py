"""paysignal SLOs: OpenSLO definitions, SLI backends (database, Prometheus), error budgets,
multi-window burn-rate alerting, Prometheus rule export and SLO review reports."""
