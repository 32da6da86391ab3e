"""Shared fixtures: the emulator over real HTTP, and the suite-wide check that no run printed
a secret. The helpers the tests call live in `helpers.py`."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import CAPTURED_OUTPUT, MELTANO, ROOT, SECRETS_SEEN, START, dt

from tap_kore_billing.orchestration.meltano_dirs import shard_sys_dir
from tap_kore_billing.sandbox import Sandbox


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test PYTEST_WORKERS=4`): the controller installs every Meltano
    plugin once, before the workers start (a test's own `meltano install` would rebuild a
    plugin another worker is running: helpers.meltano_in skips it there); each worker's
    Meltano gets a `.meltano` of its own, with links to the installed plugins and its own run/,
    logs/ and default state database. Meltano 4.4 writes a tap's catalog to one file per
    plugin, which workers running the tap at once would share."""
    # As the Makefile does: plugins installed with their bytecode (uv writes none by default).
    os.environ.setdefault("UV_COMPILE_BYTECODE", "1")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        base = Path(tempfile.mkdtemp(prefix=f"kore-billing-{worker}-"))
        own = shard_sys_dir(ROOT, base, worker, os.environ, database_uri="")
        os.environ["MELTANO_SYS_DIR_ROOT"] = own["MELTANO_SYS_DIR_ROOT"]
    elif getattr(config.option, "numprocesses", None):
        done = subprocess.run(
            [MELTANO, "install"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise pytest.UsageError(f"meltano install failed: {done.stderr[-2000:]}")


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
