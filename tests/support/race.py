"""Many processes send the same Idempotency-Key at once (for the concurrency tests)."""

from __future__ import annotations

import json
import sys
import time

from engine.exceptions import IdempotencyKeyInProgressError
from engine.storage import db
from engine.testing import payment_request
from paysignal.bootstrap import build_service


def main() -> int:
    url, key, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
    engine = db.make_engine(url, pool_size=1)
    service = build_service(engine)  # pointed at a sandbox
    time.sleep(max(0.0, start_at - time.time()))
    try:
        response = service.create_payment("m1", key, payment_request(provider="paypal"))
        outcome = "replayed" if response.replayed else "new"
    except IdempotencyKeyInProgressError:
        outcome = "in_progress"
    print(json.dumps({"outcome": outcome}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
