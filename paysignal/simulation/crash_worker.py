"""A payment request in its own process, for crash tests: it can pause at a recovery point so
the test kills it with SIGKILL, then a second process finishes the work.

python -m paysignal.simulation.crash_worker --database-url URL --key K [--pause-at POINT] [--recover]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from engine.storage import db
from engine.observability.observer import EngineObserver
from engine.providers.simulated import SqlBook, build_simulated_providers
from engine.payments.service import EngineSettings, PaymentService
from engine.testing import NO_FAULTS, payment_request


class PauseAt(EngineObserver):
    def __init__(self, point: str | None) -> None:
        self.point = point

    def recovery_point(self, name: str) -> None:
        print(f"POINT {name}", flush=True)
        if name == self.point:
            print("PAUSED", flush=True)
            while True:
                time.sleep(60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--pause-at")
    parser.add_argument("--lock-timeout", type=float, default=1.0)
    parser.add_argument("--provider", default="eastpay")
    parser.add_argument("--recover", action="store_true",
                        help="run the worker's recovery sweep instead of retrying the request")
    args = parser.parse_args(argv)
    engine = db.make_engine(args.database_url)
    gateways = build_simulated_providers(SqlBook(engine), faults=NO_FAULTS)
    service = PaymentService(engine, gateways, observer=PauseAt(args.pause_at),
                             settings=EngineSettings(lock_timeout_s=args.lock_timeout))
    if args.recover:
        print(json.dumps({"recovered": service.recover_abandoned()}), flush=True)
        return 0
    response = service.create_payment("merchant-crash", args.key,
                                      payment_request(provider=args.provider))
    print(json.dumps({"status": response.status_code, "replayed": response.replayed,
                      "body": response.body}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
