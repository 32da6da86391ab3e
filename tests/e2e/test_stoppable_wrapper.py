"""The stoppable Meltano wrapper (scripts/meltano_stoppable.py) signals the tap alone: the
process whose executable is the tap, not a loader whose arguments merely contain the tap's
name (a project checked out in a folder called tap-kore-billing gives every plugin such a
config path)."""

from __future__ import annotations

import os
import subprocess
import sys

from tap_kore_billing import meltano_stoppable

# Says when it runs: until then a child may still show its parent's command line (between
# fork and exec), which is no extractor's.
WAIT = "import time; print('running', flush=True); time.sleep(60)"


def test_only_the_taps_process_is_an_extractor(tmp_path):
    project = tmp_path / "tap-kore-billing"
    bin_dir = project / ".meltano" / "extractors" / "tap-kore-billing" / "venv" / "bin"
    loader_dir = project / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin"
    for folder, name in ((bin_dir, "tap-kore-billing"), (loader_dir, "target-postgres")):
        folder.mkdir(parents=True)
        (folder / name).write_text(WAIT)
    config = project / ".meltano" / "run" / "target-postgres" / "target.config.json"
    started = [
        subprocess.Popen(
            [sys.executable, str(bin_dir / "tap-kore-billing"), "--config", "x"],
            stdout=subprocess.PIPE,
            text=True,
        ),
        subprocess.Popen(
            [sys.executable, str(loader_dir / "target-postgres"), "--config", str(config)],
            stdout=subprocess.PIPE,
            text=True,
        ),
    ]
    try:
        for process in started:
            assert process.stdout is not None
            assert process.stdout.readline() == "running\n"
        # This test's process stands for Meltano: the two are its children.
        found = meltano_stoppable.extractors(os.getpid())
        assert found == [started[0].pid]
    finally:
        for process in started:
            process.kill()
            process.communicate()
