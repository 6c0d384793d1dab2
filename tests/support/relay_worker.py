"""The outbox relay to Kafka in its own process, for crash tests: with --pause-after-publish it
stops between publishing a batch and marking it, so the test can SIGKILL it there.

python -m tests.support.relay_worker --database-url URL --bootstrap HOST:PORT --topic T
    [--pause-after-publish]
"""

from __future__ import annotations

import argparse
import sys
import time

from engine.outbox.relay import KafkaSink, OutboxEvent, OutboxRelay
from engine.storage import db


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--pause-after-publish", action="store_true")
    args = parser.parse_args()

    def pause(events: list[OutboxEvent]) -> None:
        print(f"PUBLISHED {len(events)}", flush=True)
        while True:
            time.sleep(60)

    relay = OutboxRelay(db.make_engine(args.database_url), KafkaSink(args.bootstrap, args.topic),
                        after_publish=pause if args.pause_after_publish else None)
    print(f"DRAINED {relay.drain()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
