"""The dbt manifest the code location is built from, when several processes load the code
location at once (the multi-process executor's steps, a code server, test workers) and the
manifest is stale: each gets a whole manifest, and so does anyone reading it meanwhile, never
a file another process is still writing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from helpers import ROOT

LOAD = """
import json
from tap_kore_billing.orchestration.dbt_assets import prepared_manifest
from tap_kore_billing.orchestration.settings import CodeLocationSettings
manifest = prepared_manifest(CodeLocationSettings.from_environment())
print(json.dumps(sorted(json.loads(manifest.read_bytes())["nodes"])))
"""


def load_at_once(count: int, env: dict[str, str]) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", LOAD],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]


def test_processes_loading_at_once_each_read_a_whole_manifest(tmp_path):
    env = {**os.environ, "MELTANO_PROJECT_ROOT": str(ROOT), "KORE_BILLING_WORK_DIR": str(tmp_path)}
    for name in ("MELTANO_ENVIRONMENT", "KORE_BILLING_LOADER", "KORE_BILLING_SHARDS"):
        env.pop(name, None)
    [first] = load_at_once(1, env)
    first.communicate(timeout=300)
    manifest = tmp_path / "dbt-manifest" / "dbt-duckdb" / "manifest.json"
    os.utime(manifest, (0, 0))  # older than every file of the project: parsed again
    loaders = load_at_once(2, env)
    partial, seen = [], None
    while any(loader.poll() is None for loader in loaders):
        # Read whenever the file changed; a pause between looks keeps this loop from taking a
        # core from the loaders (a manifest takes far longer to write than the pause).
        try:
            stat = manifest.stat()
            now = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if now != seen:
                json.loads(manifest.read_bytes())
                seen = now
        except (ValueError, FileNotFoundError) as exc:
            partial.append(str(exc)[:80])
        time.sleep(0.002)
    outputs = [loader.communicate(timeout=300) for loader in loaders]
    for loader, (_, stderr) in zip(loaders, outputs, strict=True):
        assert loader.returncode == 0, stderr[-2000:]
    assert not partial, f"read while being written: {partial[:3]}"
    nodes = [json.loads(stdout) for stdout, _ in outputs]
    assert nodes[0] == nodes[1]
    assert "model.kore_billing.kore_billing__reconciliation" in nodes[0]
    # Only the manifest is left: each parse's own folder is gone with it.
    assert [p.name for p in manifest.parent.iterdir()] == ["manifest.json"]
