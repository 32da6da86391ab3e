"""A `.meltano` folder of its own for each shard's `meltano run`. Meltano 4.4 writes a tap's
catalog to one fixed file per plugin (.meltano/run/<tap>/tap.properties.json), so two runs of
the same tap in one project at once overwrite each other's ("Cannot start plugin
tap-kore-billing: Invalid catalog"). Each shard gets its own run/ and logs/ through
MELTANO_SYS_DIR_ROOT, and shares the installed plugins and the state database."""

from __future__ import annotations

import typing as t
from pathlib import Path

OWN = ("run", "logs")


def shard_sys_dir(
    project: Path, work_dir: Path, shard: str, env: t.Mapping[str, str], database_uri: str
) -> dict[str, str]:
    """The variables that give `shard` its own `.meltano` beside the project's: links to every
    entry of the project's but run/, logs/ and the SQLite state database. The state database
    is the one Meltano resolved for the project (`database_uri`), named by MELTANO_DATABASE_URI
    (a SQLite file under one path only, so that its journal and locks hold)."""
    base = Path(env.get("MELTANO_SYS_DIR_ROOT") or project / ".meltano").resolve()
    own = work_dir / "meltano" / shard
    own.mkdir(parents=True, exist_ok=True)
    if base.is_dir():
        for entry in base.iterdir():
            link = own / entry.name
            if entry.name in OWN or entry.name.startswith("meltano.db") or link.is_symlink():
                continue
            if not link.exists():
                link.symlink_to(entry)
    return {"MELTANO_SYS_DIR_ROOT": str(own), "MELTANO_DATABASE_URI": database_uri}
