"""Where the shards' tap reads from. In the local default (Meltano's sandbox environment) that is
the demo account's emulator, started for the length of a step, the one place outside the
emulator's package and the demo that imports it; otherwise what the user set."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tap_kore_billing.orchestration.settings import CodeLocationSettings
from tap_kore_billing.sandbox.demo_account import DEMO_START, demo_sandbox


@contextlib.contextmanager
def api_for(settings: CodeLocationSettings) -> Iterator[tuple[dict[str, str], list[str]]]:
    """The variables that point the tap at the API, and the account's apps when known here."""
    if not settings.local:
        yield {}, []
        return
    with demo_sandbox() as sandbox:
        yield (
            {"TAP_KORE_BILLING_API_URL": sandbox.url, "TAP_KORE_BILLING_START_DATE": DEMO_START},
            list(sandbox.bot_ids),
        )
