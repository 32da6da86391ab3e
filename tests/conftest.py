"""Shared fixtures: the emulator over real HTTP, and the suite-wide check that no run printed
a secret. The helpers the tests call live in `helpers.py`."""

from __future__ import annotations

import pytest
from helpers import CAPTURED_OUTPUT, SECRETS_SEEN, START, dt

from tap_kore_billing.sandbox import Sandbox


@pytest.fixture(scope="session", autouse=True)
def _no_secret_in_any_output():
    """After the whole suite: no tap run printed a test secret or a JWT, at any log level."""
    yield
    leaks = [
        secret[:4] + "..."
        for secret in SECRETS_SEEN
        for output in CAPTURED_OUTPUT
        if secret and secret in output
    ]
    jwts = [output for output in CAPTURED_OUTPUT if "eyJ" in output]
    assert not leaks, f"secrets printed by tap runs: {leaks}"
    assert not jwts, "a JWT was printed by a tap run"


@pytest.fixture(scope="module")
def sandbox():
    """A seeded emulator with a few apps, a 50-row page cap, unordered results and some rows
    with fields the API does not document."""
    with Sandbox(
        seed=7,
        extra_field_fraction=0.1,
        apps=2,
        sessions=1500,
        start=dt(START),
        end=dt("2024-05-15T00:00:00Z"),
        max_page_size=50,
    ) as sb:
        yield sb
