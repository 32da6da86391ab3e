"""The control endpoint, `/__sandbox/...`: the emulator's own methods over HTTP, for a client in
another process (the console script's users, Meltano runs, the benchmark): GET stats, arrivals,
info and audit_cases; POST reveal, reset_stats and configure (a JSON object of knobs). Not part
of the emulated API: no auth, no quota, no faults.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from tap_kore_billing.sandbox.wire import Reply, errors_body

CONTROL_PREFIX = "/__sandbox/"


class Controlled(Protocol):
    """What the control endpoint calls: the methods of `Sandbox` of the same names."""

    def stats(self) -> dict[str, Any]: ...
    def arrivals(self) -> dict[str, list[float]]: ...
    def info(self) -> dict[str, Any]: ...
    def planted_audit_cases(self) -> list[dict[str, Any]]: ...
    def reveal(self) -> int: ...
    def reset_stats(self) -> None: ...
    def configure(self, **knobs: Any) -> None: ...


def control(sandbox: Controlled, method: str, path: str, raw_body: bytes) -> Reply:
    """The reply to one control call; `path` starts with the control prefix."""
    name = path[len(CONTROL_PREFIX) :].strip("/")
    result: Any = {"ok": True}
    try:
        if method == "GET" and name == "stats":
            result = sandbox.stats()
        elif method == "GET" and name == "arrivals":
            result = sandbox.arrivals()
        elif method == "GET" and name == "info":
            result = sandbox.info()
        elif method == "GET" and name == "audit_cases":
            result = sandbox.planted_audit_cases()
        elif method == "POST" and name == "reveal":
            added = sandbox.reveal()
            result = {"revealed": added, "visible_sessions": sandbox.info()["visible_sessions"]}
        elif method == "POST" and name == "reset_stats":
            sandbox.reset_stats()
        elif method == "POST" and name == "configure":
            knobs = json.loads(raw_body or b"{}")
            if not isinstance(knobs, dict):
                return Reply(400, errors_body("body must be a JSON object of knobs", 400))
            sandbox.configure(**knobs)
        else:
            return Reply(404, errors_body(f"Cannot {method} {path}", 404))
    except ValueError as exc:
        return Reply(400, errors_body(str(exc), 400))
    return Reply(200, json.dumps(result).encode())
