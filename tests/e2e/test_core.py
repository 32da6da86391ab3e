"""The Singer SDK's standard tap tests, run against the emulator."""

from __future__ import annotations

import atexit
from datetime import datetime

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_kore_billing.sandbox import Sandbox
from tap_kore_billing.tap import TapKoreBilling

# The SDK builds its test class at import time from a config, so the emulator starts here.
_SANDBOX = Sandbox(
    seed=5,
    apps=2,
    sessions=300,
    links="1:2",
    start=datetime.fromisoformat("2024-01-01T00:00:00+00:00"),
    end=datetime.fromisoformat("2024-03-01T00:00:00+00:00"),
).start()
atexit.register(_SANDBOX.stop)

SAMPLE_CONFIG = {
    "api_url": _SANDBOX.url,
    "client_id": _SANDBOX.client_id,
    "client_secret": _SANDBOX.client_secret,
    "bot_ids": _SANDBOX.bot_ids,
    "start_date": "2024-01-01T00:00:00Z",
    "end_date": "2024-03-01T00:00:00Z",
    "requests_per_minute": 100_000,
    "requests_per_hour": 1_000_000,
    "summary_poll_seconds": 0.01,
}

TestTapKoreBilling = get_tap_test_class(
    TapKoreBilling,
    config=SAMPLE_CONFIG,
    suite_config=SuiteConfig(max_records_limit=None),
)
