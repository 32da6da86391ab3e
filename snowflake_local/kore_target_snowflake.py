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

Arrays and objects go into the INSERT as JSON text. Passed as they come, the Snowflake connector
would expand a list bind parameter into a parenthesised list of values (an empty list into
nothing: "expected 17 columns but 16 values"). The text is what the installed load writes to its
staged files (singer-sdk's `serialize_json`), and the VARIANT column holds that same JSON: an
empty array stays `[]`.

Why a wrapper: Meltano lets an environment change a plugin's config and env, never its
executable or pip_url, and it removes PYTHONPATH from a plugin's environment. So the wrapper is
the executable everywhere, and the substitution is switched on by the environment alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from singer_sdk.singerlib.json import serialize_json
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


def as_bind_value(value: Any) -> Any:
    """A record's value as an INSERT parameter: an array or object as its JSON text."""
    return serialize_json(value) if isinstance(value, (list, dict)) else value


def insert_records(
    self: SnowflakeSink, full_table_name: Any, schema: dict, records: Iterable[dict[str, Any]]
) -> int | None:
    """singer-sdk's plain INSERT of a batch, its arrays and objects as JSON text."""
    bindable = [{key: as_bind_value(value) for key, value in rec.items()} for rec in records]
    return SQLSink.bulk_insert_records(self, full_table_name, schema, bindable)


def use_local_server() -> None:
    """The substitution: plain INSERTs, into the server the settings name."""
    SnowflakeSink.bulk_insert_records = insert_records  # type: ignore[method-assign]
    SnowflakeConnector.get_connect_args = local_connect_args  # type: ignore[method-assign]


def main() -> None:
    if os.environ.get(LOCAL_SWITCH) == "1":
        use_local_server()
    TargetSnowflake.cli()


if __name__ == "__main__":
    main()
