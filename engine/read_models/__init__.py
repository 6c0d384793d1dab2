"""Read models for the API and for the later layers (slo, alerts, dashboard): payments,
ledger balances, SLI events and operational health."""
