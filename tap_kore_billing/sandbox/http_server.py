"""The emulator's HTTP plumbing: a threading HTTP/1.1 server with keep-alive, request bodies read
by Content-Length or chunked, and each request handed on as plain values: `/__sandbox/...` to
the control endpoint, every other path to the API (`api.py`). A reply is sent as it is, or the
connection is closed without one when the reply says `drop`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from tap_kore_billing.sandbox.control import CONTROL_PREFIX
from tap_kore_billing.sandbox.wire import Reply, errors_body

if TYPE_CHECKING:
    from tap_kore_billing.sandbox.api import Api
    from tap_kore_billing.sandbox.counters import Counters

# Idle keep-alive connections are closed like Node's default keepAliveTimeout would.
KEEPALIVE_TIMEOUT = 5.0

# The control endpoint: (method, path, body) -> reply.
Control = Callable[[str, str, bytes], Reply]


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Pending connections the kernel holds before accept (capped by net.core.somaxconn): a
    # client of hundreds of apps opens hundreds at once when their minutes roll over, and a
    # full backlog drops SYNs, which cost the client a 1 s retransmit. Production servers listen
    # with thousands (Node's default backlog is 511, nginx's 511, Linux's somaxconn 4096).
    request_queue_size = 1024

    def __init__(
        self, address: tuple[str, int], *, api: Api, control: Control, counters: Counters
    ) -> None:
        self.api = api
        self.control = control
        self.counters = counters
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-response are routine (timeouts, benchmarks); keep stderr quiet.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle plus delayed ACKs stall
    # every keep-alive response by ~40 ms.
    disable_nagle_algorithm = True
    server_version = "KoreSandbox/1.0"
    timeout = KEEPALIVE_TIMEOUT
    server: HttpServer

    def setup(self) -> None:
        super().setup()
        self.server.counters.connected()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request stderr line."""

    def do_GET(self) -> None:
        """Serve a GET request."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Serve a POST request."""
        self._dispatch("POST")

    def do_PUT(self) -> None:
        """Serve a PUT request."""
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        """Serve a DELETE request."""
        self._dispatch("DELETE")

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
        except ValueError:
            return None
        if size < 0:
            return None
        return self.rfile.read(size)

    def _dispatch(self, method: str) -> None:
        try:
            body = self._read_body()
        except ValueError:
            body = None
        path = self.path.split("?", 1)[0]
        if body is None:
            self.close_connection = True
            self._send(Reply(400, errors_body("Invalid request body length", 400)))
            return
        if path.startswith(CONTROL_PREFIX):
            self._send(self.server.control(method, path, body))
            return
        query = self.path.split("?", 1)[1] if "?" in self.path else ""
        reply = self.server.api.handle(method, path, self.headers.get("auth"), body, query)
        if reply.drop:
            self.close_connection = True
            return
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)
