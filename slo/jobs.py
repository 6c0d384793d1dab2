"""The worker job that evaluates every SLO each minute (registered through the
`paysignal.jobs` entry point, so the engine's worker never imports slo)."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine


def jobs(engine: Engine, service: Any) -> list[Any]:
    from engine.worker import Job
    from slo.backends import make_backend
    from slo.evaluate import evaluate_all
    from slo.spec import load_definitions

    scale = float(os.environ.get("PAYSIGNAL_WORKER_INTERVAL_SCALE", "1"))
    slos = load_definitions()  # a bad definition stops the worker at start, loudly
    backend = make_backend(os.environ.get("PAYSIGNAL_SLI_BACKEND", "database"), engine=engine,
                           prometheus_url=os.environ.get("PAYSIGNAL_PROMETHEUS_URL"))

    def run() -> dict[str, object]:
        results = evaluate_all(engine, backend, slos)
        return {"evaluated": len(results),
                "firing": sorted({r.slo.name for r in results
                                  if any(not c.inhibited_by for c in r.conditions)})}

    return [Job("slo_evaluation", 60 * scale, run)]
