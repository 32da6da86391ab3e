"""A local emulator of Kore.ai's billing APIs over real HTTP, for testing, benchmarking and
demonstrating the tap. `Sandbox` (server.py) runs it; the API's answers are `api.py` behind
`gate.py` (auth, quota, faults), with one module per endpoint family (`billing_sessions.py`,
`summary.py`, `apps.py`); the generated account is `generation.py` and `data.py`; every knob
is declared in `knobs.py`. Imports nothing of the tap."""

from tap_kore_billing.sandbox.server import Sandbox

__all__ = ["Sandbox"]
