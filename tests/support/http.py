"""Small HTTP helpers for tests and benchmarks that run real processes: wait until a service
answers, and a local webhook receiver that records what it is sent."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


def wait_for_http(url: str, proc: subprocess.Popen[Any] | None = None,
                  timeout: float = 60.0) -> None:
    """Until `url` answers 200; fails at once if `proc` (the service) exits meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} exited with {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


class WebhookRecorder:
    """A local webhook receiver: every POSTed JSON body, with the path it came to."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorder.received.append((self.path.strip("/"), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def bodies(self, path: str = "") -> list[Any]:
        return [body for where, body in self.received if where == path]

    def close(self) -> None:
        self._server.shutdown()


def wait_for_port(port: int, host: str = "127.0.0.1", timeout_s: float = 20) -> None:
    """Until something accepts TCP connections on host:port."""
    import socket
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.05)
