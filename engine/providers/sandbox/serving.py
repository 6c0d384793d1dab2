"""The sandbox served in process (an httpx transport under a virtual clock) and over real
loopback HTTP, where a read time-out is a stalled connection and a reset a closed one."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from engine.providers.sandbox.application import Sandbox
from engine.providers.sandbox.protocol import OutgoingWebhook, Wire, log

# --- served in process ----------------------------------------------------------------------

class SandboxTransport(httpx.BaseTransport):
    """Mounts the sandbox inside an httpx client: the simulator's deterministic wire (give the
    Sandbox a virtual clock's sleep); faults are raised as httpx raises them."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        response = self.sandbox.handle(
            request.method, request.url.path, parse_qs(request.url.query.decode()),
            {k.decode().lower(): v.decode() for k, v in request.headers.raw}, body)
        if response.wire is Wire.REFUSE:
            raise httpx.ConnectError("connection refused (sandbox fault)", request=request)
        if response.wire is Wire.STALL:
            raise httpx.ReadTimeout("no answer (sandbox fault)", request=request)
        if response.wire is Wire.RESET:
            raise httpx.RemoteProtocolError("connection reset mid-answer (sandbox fault)",
                                            request=request)
        return httpx.Response(response.status, headers=dict(response.headers),
                              content=response.body, request=request)


# --- served over HTTP -----------------------------------------------------------------------

STALL_LIMIT_S = 60.0  # a stalled connection is held at most this long, then closed


class SandboxServer:
    """The sandbox over real HTTP/1.1 on a loopback port, one thread per connection, with a
    deliverer that posts due webhooks to `webhook_url(provider)`."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0,
                 webhook_url: Callable[[str], str | None] | None = None) -> None:
        self.sandbox = sandbox
        self._webhook_url = webhook_url
        self._stop = threading.Event()
        handler = _handler_for(sandbox, self._stop)
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def base_url(self, provider: str) -> str:
        return f"{self.url}/{provider}"

    def start(self) -> SandboxServer:
        self.sandbox.public_url = self.url
        serve = threading.Thread(target=self._httpd.serve_forever, name="sandbox-http",
                                 daemon=True)
        serve.start()
        self._threads.append(serve)
        if self._webhook_url is not None:
            self.deliver_to(self._webhook_url)
        return self

    def deliver_to(self, webhook_url: Callable[[str], str | None]) -> None:
        """From now on, post due notifications to `webhook_url(provider)` (a thread)."""
        self._webhook_url = webhook_url
        deliver = threading.Thread(target=self._deliver_forever, name="sandbox-webhooks",
                                   daemon=True)
        deliver.start()
        self._threads.append(deliver)

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _deliver_forever(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while not self._stop.wait(0.05):
                for webhook in self.sandbox.due_webhooks():
                    url = self._webhook_url(webhook.provider) if self._webhook_url else None
                    if url:
                        deliver_webhook(client, url, webhook)


def deliver_webhook(client: httpx.Client, url: str, webhook: OutgoingWebhook) -> int | None:
    """POST one notification; its HTTP status, or None when the receiver was unreachable (a
    real provider retries later; the sandbox counts it as lost)."""
    try:
        return client.post(url, content=webhook.body,
                           headers=webhook.headers(time.time())).status_code
    except httpx.HTTPError as exc:
        log.warning("webhook to %s not delivered: %s", url, type(exc).__name__)
        return None


def _handler_for(sandbox: Sandbox, stop: threading.Event) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "paysignal-sandbox"
        # headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every answer on a kept-alive connection
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the books and the engine's own signals tell what happened

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            response = sandbox.handle(self.command, parts.path, parse_qs(parts.query),
                                      {k.lower(): v for k, v in self.headers.items()}, body)
            if response.wire is Wire.STALL:
                self._stall()
                return
            if response.wire in (Wire.RESET, Wire.REFUSE):
                self._reset()
                return
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        def _stall(self) -> None:
            # Hold the connection without answering until the client gives up (its read
            # time-out) or the limit; then drop it.
            self.connection.settimeout(0.1)
            deadline = time.monotonic() + STALL_LIMIT_S
            while time.monotonic() < deadline and not stop.is_set():
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        break  # the client closed its end
                except TimeoutError:
                    continue
                except OSError:
                    break
            self._reset()

        def _reset(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):  # RST rather than FIN: the client sees a reset
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))

        do_GET = do_POST = do_DELETE = do_PATCH = _serve  # noqa: N815

    return Handler
