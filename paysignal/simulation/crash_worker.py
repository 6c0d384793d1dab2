"""One piece of payment work in its own process, for crash tests and sim-test: it can pause at
a recovery point so the caller kills it with SIGKILL; a second process then finishes the work.
The providers are the real connectors, configured from the environment (the caller points them
at a sandbox that outlives this process, so its books count what was really charged).

python -m paysignal.simulation.crash_worker --database-url URL --key K [--pause-at POINT]
    [--provider P] [--behaviour B | --payment-method M] [--capture automatic|manual]
python -m paysignal.simulation.crash_worker --database-url URL --recover
python -m paysignal.simulation.crash_worker --database-url URL --resolve [--pause-at POINT]
python -m paysignal.simulation.crash_worker --database-url URL --webhook FILE [--pause-at POINT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from engine.domain.recovery import RecoveryPoint
from engine.observability.observer import EngineObserver
from engine.payments.webhooks import ingest
from engine.providers.sandbox.registry import BEHAVIOURS
from engine.storage import db
from engine.testing import payment_method, payment_request
from paysignal.bootstrap import build_service
from paysignal.settings import load_settings


class PauseAt(EngineObserver):
    def __init__(self, point: str | None) -> None:
        self.point = point

    def recovery_point(self, name: RecoveryPoint) -> None:
        print(f"POINT {name}", flush=True)
        if name == self.point:
            print("PAUSED", flush=True)
            while True:
                time.sleep(60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--key", default="order-42")
    parser.add_argument("--pause-at", choices=[p.value for p in RecoveryPoint])
    parser.add_argument("--lock-timeout", type=float, default=1.0)
    parser.add_argument("--provider", default="paypal")
    parser.add_argument("--behaviour", choices=BEHAVIOURS, default="approve",
                        help="the sandbox payment method to pay with")
    parser.add_argument("--capture", choices=["automatic", "manual"], default="automatic")
    parser.add_argument("--payment-method",
                        help="pay with this provider test method instead of --behaviour's")
    work = parser.add_mutually_exclusive_group()
    work.add_argument("--recover", action="store_true",
                      help="run the worker's abandoned-request sweep")
    work.add_argument("--resolve", action="store_true",
                      help="run the worker's unknown-outcome resolver")
    work.add_argument("--webhook", type=Path,
                      help="ingest the signed notifications in FILE (JSON lines)")
    args = parser.parse_args(argv)
    engine = db.make_engine(args.database_url)
    settings = load_settings({**os.environ,
                              "PAYSIGNAL_IDEMPOTENCY_LOCK_TIMEOUT_S": str(args.lock_timeout)})
    service = build_service(engine, settings, observer=PauseAt(args.pause_at))
    if args.recover:
        print(json.dumps({"recovered": service.recover_abandoned()}), flush=True)
        return 0
    if args.resolve:
        print(json.dumps(service.resolve_unknown_outcomes()), flush=True)
        return 0
    if args.webhook:
        results = []
        for line in args.webhook.read_text().splitlines():
            note = json.loads(line)
            results.append(ingest(service, note["provider"], note["headers"],
                                  note["body"].encode()))
        print(json.dumps({"results": results}), flush=True)
        return 0
    response = service.create_payment("merchant-crash", args.key, payment_request(
        provider=args.provider, capture=args.capture,
        payment_method=args.payment_method or payment_method(args.provider, args.behaviour)))
    print(json.dumps({"status": response.status_code, "replayed": response.replayed,
                      "body": response.body}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
