"""`make orchestrate` (scripts/orchestrate.py) as a user starts it: it prints the UI's address,
and there the code location shows its assets, our two checks and the schedule."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from helpers import ROOT
from snowflake_helpers import free_port

QUERY = """{
  assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } }
  repositoriesOrError { ... on RepositoryConnection { nodes { location { name }
    schedules { name cronSchedule } } } }
}"""


def ask(port: int) -> dict | None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - loopback
            return json.load(answer)["data"]
    except OSError:
        return None


def test_the_ui_shows_the_code_location(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "ORCHESTRATE_PORT": str(port),
        "DAGSTER_HOME": str(tmp_path / "home"),
        "KORE_BILLING_WORK_DIR": str(tmp_path / "work"),
    }
    for name in ("MELTANO_ENVIRONMENT", "KORE_BILLING_LOADER", "KORE_BILLING_SHARDS"):
        env.pop(name, None)
    ui = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "orchestrate.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        first = ui.stdout.readline() if ui.stdout else ""
        assert first.startswith(f"Dagster UI: http://127.0.0.1:{port}"), first
        deadline, data = time.monotonic() + 240, None
        while data is None and time.monotonic() < deadline and ui.poll() is None:
            data = ask(port)
            if data is None or not data.get("assetNodes"):
                data = None
                time.sleep(1)  # polling the server until it answers, not a race
        assert data, "the UI did not answer with the code location in 4 minutes"
    finally:
        os.killpg(ui.pid, signal.SIGINT)  # Ctrl-C: dagster dev stops its code servers too
        ui.wait(timeout=60)
    keys = {"/".join(node["assetKey"]["path"]) for node in data["assetNodes"]}
    assert {"kore_billing/shard_1", "kore_billing/shard_2", "kore_billing/findings"} <= keys
    assert "kore_billing__reconciliation" in keys
    checks = {
        check["name"]
        for node in data["assetNodes"]
        for check in node["assetChecksOrError"].get("checks", [])
    }
    assert {"reconciliation", "audit"} <= checks
    [repository] = data["repositoriesOrError"]["nodes"]
    assert repository["location"]["name"] == "kore_billing"
    assert [(s["name"], s["cronSchedule"]) for s in repository["schedules"]] == [
        ("kore_billing_schedule", "0 * * * *")
    ]
    assert (tmp_path / "home" / "dagster.yaml").read_text().startswith("concurrency:")
