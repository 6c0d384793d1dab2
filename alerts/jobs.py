"""The worker job that evaluates alerts and delivers notifications every minute (registered
through the `paysignal.jobs` entry point)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine


def jobs(engine: Engine, service: Any) -> list[Any]:
    from alerts.detectors import detect
    from alerts.pipeline import evaluate_alerts
    from alerts.receivers import deliver_pending
    from alerts.routing import load_config
    from engine.worker import Job

    scale = float(os.environ.get("PAYSIGNAL_WORKER_INTERVAL_SCALE", "1"))
    path = os.environ.get("PAYSIGNAL_ALERT_ROUTES")
    routing = load_config(Path(path) if path else None)

    def run() -> dict[str, object]:
        result = evaluate_alerts(engine, routing, detect(engine, datetime.now(UTC)))
        return {"firing": len(result.firing), "notifications": result.notifications,
                **deliver_pending(engine, routing)}

    return [Job("alert_evaluation", 60 * scale, run)]
