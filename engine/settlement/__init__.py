"""Provider settlement files: formats, import, and (next) reconciliation."""
