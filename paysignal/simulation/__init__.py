"""The simulation home: simulated days (`paysignal simulate`), settlement files with injected
discrepancies, seeded fault testing (`paysignal sim-test`), the demo day and the crash worker."""
