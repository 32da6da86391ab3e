"""The client prepares its requests itself (not through `Session.request`): over real HTTP, the
server gets what `session.request(..., json=body, auth=...)` would send, cookies the server set
come back, and a redirect is followed."""

from __future__ import annotations

import json
import threading
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from tap_kore_billing.client.api import KoreApi

SECRET = "a-client-secret-of-the-usual-length-0123"


class Recorder(BaseHTTPRequestHandler):
    seen: t.ClassVar[list[dict[str, t.Any]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        if self.path.endswith("/moved"):
            self.send_response(307)
            self.send_header("Location", self.path.replace("/moved", "/here"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("Set-Cookie", "lb=node-7; Path=/")
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> t.Iterator[KoreApi]:
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = {
        "api_url": f"http://127.0.0.1:{server.server_address[1]}/",
        "client_id": "cs-1234",
        "client_secret": SECRET,
        "requests_per_minute": 60,
        "requests_per_hour": 1800,
        "request_timeout": 10,
        "retry_attempts": 1,
        "retry_initial_delay": 0.0,
    }
    try:
        yield KoreApi(config, "tap-kore-billing/9.9")
    finally:
        server.shutdown()
        server.server_close()


def test_a_post_carries_the_json_body_and_the_headers(api: KoreApi):
    body = {"fromDate": "2024-01-01T00:00:00.000Z", "limit": 20, "skip": 0, "name": "é"}
    response = api.send("POST", "/api/public/bot/st-1/getBillingSessionsDetails", body)
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    (seen,) = Recorder.seen
    assert seen["method"] == "POST"
    assert seen["path"] == "/api/public/bot/st-1/getBillingSessionsDetails"
    assert json.loads(seen["body"]) == body
    headers = seen["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "tap-kore-billing/9.9"
    assert int(headers["Content-Length"]) == len(seen["body"])
    claims = jwt.decode(headers["auth"], SECRET, algorithms=["HS256"])
    assert claims["appId"] == "cs-1234"


def test_a_get_has_no_body(api: KoreApi):
    api.send("GET", "/api/public/bot/st-1/getLinkedApps", None)
    (seen,) = Recorder.seen
    assert seen["method"] == "GET"
    assert seen["body"] == b""
    assert "Content-Length" not in seen["headers"]


def test_cookies_the_server_set_come_back_and_redirects_are_followed(api: KoreApi):
    api.send("POST", "/a", {"n": 1})
    response = api.send("POST", "/b/moved", {"n": 2})
    assert response.status_code == 200
    first, second, third = Recorder.seen
    assert "Cookie" not in first["headers"]
    assert second["headers"]["Cookie"] == "lb=node-7"
    assert (third["path"], json.loads(third["body"])) == ("/b/here", {"n": 2})
    assert first["headers"]["auth"] != second["headers"]["auth"]  # a fresh token each
