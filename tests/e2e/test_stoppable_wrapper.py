"""scripts/meltano_stoppable.py signals the tap alone: the process whose executable is the tap,
not a loader whose arguments merely contain the tap's name (a project checked out in a folder
called tap-kore-billing gives every plugin such a config path)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WAIT = "import time; time.sleep(60)"


def wrapper() -> t.Any:
    spec = importlib.util.spec_from_file_location(
        "stoppable", ROOT / "scripts" / "meltano_stoppable.py"
    )
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_the_taps_process_is_an_extractor(tmp_path):
    project = tmp_path / "tap-kore-billing"
    bin_dir = project / ".meltano" / "extractors" / "tap-kore-billing" / "venv" / "bin"
    loader_dir = project / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin"
    for folder, name in ((bin_dir, "tap-kore-billing"), (loader_dir, "target-postgres")):
        folder.mkdir(parents=True)
        (folder / name).write_text(WAIT)
    config = project / ".meltano" / "run" / "target-postgres" / "target.config.json"
    started = [
        subprocess.Popen([sys.executable, str(bin_dir / "tap-kore-billing"), "--config", "x"]),
        subprocess.Popen(
            [sys.executable, str(loader_dir / "target-postgres"), "--config", str(config)]
        ),
    ]
    try:
        # This test's process stands for Meltano: the two are its children.
        found = wrapper().extractors(os.getpid())
        assert found == [started[0].pid]
    finally:
        for process in started:
            process.kill()
            process.wait()
