"""The demo account: what `make demo` and the Dagster code location's local default run against.

Three apps whose history begins on DEMO_START, where Front Desk routes to Claims Bot and Billing
Help; the usage summary bills Claims Bot three more conversations than it had on INJECTED_DAY;
AUDIT_CASES plant billing sessions that each break one billing rule (fixed IDs). Its sessions
keep their IDs and times whenever it starts, so what it shows is the same today or next week.
"""

from __future__ import annotations

from tap_kore_billing.sandbox.__main__ import build
from tap_kore_billing.sandbox.server import Sandbox

DEMO_START = "2026-09-01T00:00:00Z"
INJECTED_DAY = "2026-11-21"
INJECTED = f"2:{INJECTED_DAY}:conversations:3"  # app 2 is Claims Bot
LINKS = "1:2,1:3"
# One audit case of each finding (FINDING:APP:DAY; apps 1 Front Desk, 2 Claims Bot, 3 Billing
# Help), away from INJECTED_DAY; the emulator's info line lists their IDs under "audit_cases".
AUDIT_CASES = (
    "longer_than_15_minutes:1:2026-09-14",
    "overlaps_another_session:2:2026-10-06",
    "outside_its_conversation:3:2026-10-22",
    "over_counted:1:2026-11-09",
)
# What one billing session costs in the demo, per billingSessionType (dbt var
# kore_billing_price_per_session; made-up prices, in USD): the FOCUS model prices every type.
DEMO_PRICES = {
    "Conversations": 0.012,
    "Sessions": 0.012,
    "Alert Notifications": 0.002,
    "Proactive Notifications": 0.002,
}
# The emulator's obviously fake secret, as in meltano.yml's sandbox environment.
SANDBOX_SECRET = "sandbox-secret-not-real-only-for-the-local-emulator"  # noqa: S105

ARGUMENTS = (
    "--client-secret",
    SANDBOX_SECRET,
    "--start",
    DEMO_START,
    "--links",
    LINKS,
    "--summary-discrepancy",
    INJECTED,
    "--audit-case",
    ",".join(AUDIT_CASES),
)


def demo_sandbox(port: int = 0) -> Sandbox:
    """The demo account's emulator on 127.0.0.1:`port` (0: a free one), not yet started."""
    return build([*ARGUMENTS, "--port", str(port)])
