"""target-snowflake's executable: the installed target, with snowflake-local's one substitution.

In every environment but `snowflake-local` this runs MeltanoLabs target-snowflake as installed,
nothing changed. In `snowflake-local` (meltano.yml sets KORE_SNOWFLAKE_LOCAL=1 for the target
there) it first swaps the target's bulk load, because the local fakesnow server cannot run it:
target-snowflake loads each batch with PUT to the user stage `@~`, a MERGE (or COPY) selecting
from the staged files with QUALIFY, then REMOVE and DROP FILE FORMAT. Here its sink's
`bulk_insert_records` becomes singer-sdk's `SQLSink` one: a plain `INSERT ... VALUES` per batch,
which appends. Its connection goes to the server named by the settings `host`, `port` and
`protocol`. Everything else runs as installed: the DDL, the type mapping, the `_sdc_*` columns,
the SDK's batching and state.

Why a wrapper: Meltano lets an environment change a plugin's config and env, never its
executable or pip_url, and it removes PYTHONPATH from a plugin's environment. So the wrapper is
the executable everywhere, and the substitution is switched on by the environment alone.
"""

from __future__ import annotations

import os
from typing import Any

from singer_sdk.sql.sink import SQLSink
from target_snowflake.connector import SnowflakeConnector
from target_snowflake.sinks import SnowflakeSink
from target_snowflake.target import TargetSnowflake

LOCAL_SWITCH = "KORE_SNOWFLAKE_LOCAL"
installed_connect_args = SnowflakeConnector.get_connect_args


def local_connect_args(self: SnowflakeConnector) -> dict[str, Any]:
    """The installed connect args, plus the local server's address."""
    args = installed_connect_args(self)
    args["host"] = self.config.get("host") or "127.0.0.1"
    args["port"] = int(self.config.get("port") or 64616)
    args["protocol"] = self.config.get("protocol") or "http"
    # No telemetry to post; and a failed statement fails within seconds instead of being retried
    # for the connector's default of several minutes.
    args["session_parameters"]["CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED"] = False
    args["network_timeout"] = 30
    return args


def use_local_server() -> None:
    """The substitution: plain INSERTs, into the server the settings name."""
    SnowflakeSink.bulk_insert_records = SQLSink.bulk_insert_records  # type: ignore[method-assign]
    SnowflakeConnector.get_connect_args = local_connect_args  # type: ignore[method-assign]


def main() -> None:
    if os.environ.get(LOCAL_SWITCH) == "1":
        use_local_server()
    TargetSnowflake.cli()


if __name__ == "__main__":
    main()
