"""The wiring package: the only code that imports engine, slo, alerts and dashboard together.

It assembles the `paysignal` command line (`paysignal.cli`), the HTTP API (`paysignal.api`), the
worker's job list (`paysignal.worker`) and the real adapters (`paysignal.bootstrap`), and holds
the simulation home (`paysignal.simulation`: simulated days, settlement files, sim-test, the
demo). Nothing imports it."""
