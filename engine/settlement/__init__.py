"""Provider settlement files: formats, import, reconciliation against the ledger, and the
finance queue of breaks."""
