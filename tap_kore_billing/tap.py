"""tap-kore-billing: settings, their validation, the stream list and the command line."""

from __future__ import annotations

import difflib
import ipaddress
import json
import logging
import math
import os
import re
import sys
import typing as t
from decimal import Decimal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TapCapabilities
from singer_sdk.plugin_base import JSONSchemaValidator, PluginBase
from singer_sdk.tap_base import CliTestOptionValue

from tap_kore_billing.client import KoreBillingStream
from tap_kore_billing.datetimes import parse_setting_datetime
from tap_kore_billing.errors import TapKoreBillingError
from tap_kore_billing.inputs import prepare_arguments
from tap_kore_billing.streams import BillingSessionsStream, BillingUsageSummaryStream
from tap_kore_billing.writer import BufferedMsgSpecWriter, DownstreamClosedError

if t.TYPE_CHECKING:
    from types import FrameType

    from jsonschema import ValidationError
    from singer_sdk.streams import Stream

LOOPBACK_HOSTS = {"localhost"}
SECRET_SETTINGS = ("client_secret", "auth_token")


class TapKoreBilling(Tap):
    """Singer tap for Kore.ai XO Platform billing sessions."""

    name = "tap-kore-billing"
    message_writer_class = BufferedMsgSpecWriter
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        TapCapabilities.CATALOG,
        TapCapabilities.STATE,
        TapCapabilities.DISCOVER,
        TapCapabilities.TEST,
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.BATCH,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_url",
            th.StringType,
            default="https://platform.kore.ai",
            title="API URL",
            description="Environment host: https://platform.kore.ai (global), "
            "https://de-platform.kore.ai (EU), https://jp-platform.kore.ai (JP), "
            "https://bots.kore.ai, or an on-premises host. Must be https (loopback excepted).",
        ),
        th.Property(
            "client_id",
            th.StringType,
            title="Client ID",
            description="Client ID of the app's credentials (the JWT's appId).",
        ),
        th.Property(
            "client_secret",
            th.StringType,
            secret=True,
            title="Client Secret",
            description="Secret. Client Secret of the app's credentials; signs the JWT (HS256).",
        ),
        th.Property(
            "auth_token",
            th.StringType,
            secret=True,
            title="Auth Token",
            description="Secret. A ready JWT, used as-is instead of client_id/client_secret.",
        ),
        th.Property(
            "api_scope",
            th.StringType,
            default="bot",
            allowed_values=["bot", "admin"],
            title="API Scope",
            description="`bot`: the app-scope path, one app at a time (needs bot_ids). "
            "`admin`: the account-wide Admin Console path.",
        ),
        th.Property(
            "bot_ids",
            th.ArrayType(th.StringType),
            title="App IDs",
            description="App (bot or stream) IDs, `st-...`. Required for api_scope `bot`; "
            "an optional filter for `admin` (empty: every app of the account).",
        ),
        th.Property(
            "channels",
            th.ArrayType(th.StringType),
            title="Channels",
            description="Optional channel codes; each is requested (and bookmarked) separately.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            required=True,
            title="Start Date",
            description="Earliest billing session to extract (ISO 8601; no zone means UTC).",
        ),
        th.Property(
            "end_date",
            th.DateTimeType,
            title="End Date",
            description="Latest billing session to extract, for bounded backfills. "
            "Default: the moment the run starts.",
        ),
        th.Property(
            "window_days",
            th.IntegerType(minimum=1, maximum=90),
            default=30,
            title="Window Days",
            description="Days per fromDate/toDate request window (1-90; never more than "
            "three calendar months, the API's limit).",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1),
            default=1000,
            title="Page Size",
            description="`limit` asked per request. The server may send fewer rows; if it "
            "refuses more than the documented 100 (a 400 about the limit, or a 5xx), the run "
            "falls back to 100 after one request, with a warning.",
        ),
        th.Property(
            "lookback_hours",
            th.NumberType(minimum=0),
            default=24,
            title="Lookback Hours",
            description="Re-read this many hours before the bookmark, for sessions the API "
            "shows late.",
        ),
        th.Property(
            "requests_per_minute",
            th.IntegerType(minimum=1),
            default=60,
            title="Requests Per Minute",
            description="Client-side limit per quota holder (each app in `bot` scope, the "
            "account in `admin` scope), rolling minute.",
        ),
        th.Property(
            "requests_per_hour",
            th.IntegerType(minimum=1),
            default=1800,
            title="Requests Per Hour",
            description="Client-side limit per quota holder, rolling hour.",
        ),
        th.Property(
            "api_timezone",
            th.StringType,
            default="UTC",
            title="API Time Zone",
            description="IANA zone of the API's zone-less datetime strings.",
        ),
        th.Property(
            "max_workers",
            th.IntegerType(minimum=1, maximum=32),
            default=32,
            title="Max Workers",
            description="Upper bound on requests in flight at once. The tap keeps in flight "
            "what the quota holders' limits and the API's observed latency need (Little's "
            "law: at 60 a minute and 300 ms a request, about 0.6 per app, at least 4), every "
            "holder served in turn; lower this to be gentler on the API or a proxy. Each "
            "partition's state stays exact.",
        ),
        th.Property(
            "request_timeout",
            th.NumberType(exclusive_minimum=0),
            default=60,
            title="Request Timeout",
            description="Seconds to wait for one API response.",
        ),
        th.Property(
            "retry_attempts",
            th.IntegerType(minimum=1),
            default=8,
            title="Retry Attempts",
            description="Tries per request for throttling (429), server errors, network "
            "failures and cut-off bodies.",
        ),
        th.Property(
            "retry_initial_delay",
            th.NumberType(minimum=0),
            default=1.0,
            title="Retry Initial Delay",
            description="Seconds before the first retry, doubling each time; a Retry-After "
            "header from the API takes precedence.",
        ),
        th.Property(
            "summary_granularity",
            th.StringType,
            default="day",
            allowed_values=["day", "hour", "month"],
            title="Usage Summary Granularity",
            description="Period of the billing_usage_summary stream's counters: `day`, `hour` "
            "or `month` (UTC buckets).",
        ),
        th.Property(
            "summary_lookback_days",
            th.IntegerType(minimum=0),
            default=3,
            title="Usage Summary Lookback Days",
            description="Days before the usage summary bookmark each run asks for again, "
            "because recent periods still change while late sessions are published.",
        ),
        th.Property(
            "summary_timeout_seconds",
            th.IntegerType(minimum=1),
            default=600,
            title="Usage Summary Timeout Seconds",
            description="How long one usage summary report job may take, from its start to its "
            "result, before the run fails.",
        ),
        th.Property(
            "summary_poll_seconds",
            th.NumberType(exclusive_minimum=0),
            default=1.0,
            title="Usage Summary Poll Seconds",
            description="Seconds before the first status check of a usage summary job; each "
            "later check waits 1.5 times longer, up to 30 s.",
        ),
    ).to_dict()

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Every problem with the settings in one pass, each once, in plain words.

        Also fills in defaults, as the SDK's validator does.
        """
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        errors = coerce_settings(self._config, schema["properties"])
        errors += [
            _plain_words(error) for error in JSONSchemaValidator(schema).iter_errors(self._config)
        ]
        errors = _one_per_setting(errors + settings_errors(self._config))
        for name in sorted(set(self._config) - set(schema["properties"])):
            close = difflib.get_close_matches(name, schema["properties"], n=1)
            self.logger.warning(
                "Setting `%s` is not a setting of this tap and is ignored%s",
                name,
                f" (did you mean `{close[0]}`?)" if close else "",
            )
        if errors and raise_errors:
            raise ConfigValidationError(
                "Config validation failed", errors=errors, schema=self.config_jsonschema
            )
        if not errors:
            shown = {
                name: "(set)" if name in SECRET_SETTINGS and value else value
                for name, value in self._config.items()
                if name in OWN_SETTINGS
            }
            self.logger.info(
                "Settings in effect: %s", json.dumps(shown, sort_keys=True, default=_as_json)
            )
        return errors

    @property
    def _env_var_config(self) -> dict[str, t.Any]:  # type: ignore[override]
        """Settings from TAP_KORE_BILLING_* variables, the tap's own ones as text: they are
        typed in `_validate_config`, which names a bad value's setting (the SDK's own parsing
        would stop at the first with a bare ValueError)."""
        builtin = {
            "properties": {
                name: schema
                for name, schema in self.config_jsonschema["properties"].items()
                if name not in OWN_SETTINGS
            }
        }
        # (This also loads a .env file into the environment, as the SDK does.)
        parsed = parse_environment_config(builtin, self._env_var_prefix)
        for name in OWN_SETTINGS:
            variable = f"{self._env_var_prefix}{name.upper()}"
            if variable in os.environ:
                parsed[name] = os.environ[variable]
        return parsed

    def load_state(self, state: dict[str, t.Any]) -> None:
        # A whole STATE message, as the tap prints it, holds the state in its `value`.
        if state.get("type") == "STATE" and isinstance(state.get("value"), dict):
            state = state["value"]
        streams = {BillingSessionsStream.name, BillingUsageSummaryStream.name}
        named = set(state.get("bookmarks") or {})
        if named and not named & streams:
            # A misspelt stream name would otherwise mean a silent full backfill.
            raise TapKoreBillingError(
                f"the state has bookmarks for {', '.join(sorted(named))} but none for this "
                f"tap's streams ({', '.join(sorted(streams))}); fix the state, or pass {{}} "
                "to start from start_date"
            )
        super().load_state(state)

    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """`--test`: a real connection check instead of the SDK's one-record sync."""
        if value == CliTestOptionValue.Schema.value:
            super().cb_test(ctx, param, value)
            return
        if value == CliTestOptionValue.Disabled.value:
            return
        config = ctx.params.get("config")
        tap = cls(
            config=config.config if config else {},
            parse_env_config=bool(config and config.parse_env),
            validate_config=True,
        )
        tap.check_connection()
        ctx.exit()

    def check_connection(self) -> None:
        """A request or two per partition and stream that prove host, credentials, scope and
        each app, whatever start_date is; no records, no state."""
        streams = [s for s in self.streams.values() if isinstance(s, KoreBillingStream)]
        for stream in streams:
            stream.checking_connection = True
        checked = [stream.check_connection() for stream in streams]
        self.logger.info("Connection test passed: %s", "; ".join(checked))

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """On SIGTERM or Ctrl-C the SDK writes the state in memory, then exits. In BATCH mode
        that state may cover records still in a batch file not yet written, so there the last
        STATE sent (after its batch file) stands."""
        if any(
            isinstance(stream, KoreBillingStream) and stream.get_batch_config(self.config)
            for stream in self.streams.values()
        ):
            self.logger.warning(
                "Stopped by signal %d: in BATCH mode the last STATE sent stands; the next run "
                "goes on from there",
                signum,
            )
            PluginBase._handle_termination(self, signum, frame)  # logs, exits; no state
            return
        super()._handle_termination(signum, frame)

    def discover_streams(self) -> list[Stream]:
        return [BillingSessionsStream(self), BillingUsageSummaryStream(self)]


# The tap's own settings (not the SDK's stream-map ones, whose values may hold salts).
OWN_SETTINGS = frozenset(TapKoreBilling.config_jsonschema["properties"])


def coerce_settings(config: dict[str, t.Any], properties: dict[str, t.Any]) -> list[str]:
    """Turn text into numbers, booleans and lists where the schema wants them, in place.

    Environment variables (`--config ENV`, Meltano) carry every value as text, and Meltano
    passes fractional numbers as text (its `decimal` kind cannot be serialised). Arrays may
    come as JSON or comma-separated text.
    """
    errors = []
    for name, schema in properties.items():
        value = config.get(name)
        if not isinstance(value, str):
            continue
        types = schema.get("type", [])
        text = value.strip()
        try:
            if "integer" in types:
                config[name] = _whole_number(text)
            elif "number" in types:
                config[name] = _finite_number(text)
            elif "boolean" in types:
                config[name] = _boolean(text)
            elif "array" in types:
                config[name] = json.loads(text) if text.startswith("[") else text.split(",")
        except ValueError:
            shown = "(hidden)" if name in SECRET_SETTINGS else repr(value)
            errors.append(f"setting `{name}` is {shown}, not {_kind_words(types)}")
    return errors


def _finite_number(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # float() takes "nan" and "inf"; no setting means them
        raise ValueError(text)
    return number


def _whole_number(text: str) -> int:
    # "30" and "30.0" (what some tools write for whole numbers) are 30; "1.5" is not.
    number = _finite_number(text)
    if not number.is_integer():
        raise ValueError(text)
    return int(number)


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(text)


_KIND_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "string": "text",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
}


def _kind_words(types: str | list[str]) -> str:
    names = [types] if isinstance(types, str) else [n for n in types if n != "null"]
    return " or ".join(_KIND_WORDS.get(n, n) for n in names) or "a valid value"


def _plain_words(error: ValidationError) -> str:  # noqa: PLR0911 - one sentence per rule
    """One JSON Schema error as a sentence about the setting; never a secret's value."""
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required":
        message = str(error.message)
        missing = message.split("'")[1] if "'" in message else "?"
        return f"setting `{'.'.join([*path, missing])}` is required"
    name = ".".join(path) or "?"
    value = "(hidden)" if name in SECRET_SETTINGS else repr(error.instance)
    rule = error.validator_value
    if error.validator == "type":
        return f"setting `{name}` is {value}, not {_kind_words(rule)}"
    if error.validator in ("minimum", "exclusiveMinimum"):
        return f"setting `{name}` is {value}, below the minimum {rule}"
    if error.validator in ("maximum", "exclusiveMaximum"):
        return f"setting `{name}` is {value}, above the maximum {rule}"
    if error.validator == "enum":
        return f"setting `{name}` is {value}, not one of {', '.join(map(str, rule))}"
    if error.validator == "format":
        return f"setting `{name}` is {value}, not a valid {rule}"
    if name in SECRET_SETTINGS:
        return f"setting `{name}` is not valid"
    return f"setting `{name}`: {error.message}"


def _as_json(value: object) -> object:
    # The SDK reads fractions in a config file as Decimal: show them as the numbers they are.
    return float(value) if isinstance(value, Decimal) else str(value)


def _one_per_setting(errors: list[str]) -> list[str]:
    """The first problem found with each setting; the others would only repeat it."""
    kept: dict[str, str] = {}
    for error in errors:
        match = re.match(r"settings? `([^`]+)`", error)
        kept.setdefault(match.group(1) if match else error, error)
    return list(kept.values())


def settings_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """Checks JSON Schema cannot express, each naming the setting and what to do."""
    errors: list[str] = []
    if not config.get("auth_token") and not (
        config.get("client_id") and config.get("client_secret")
    ):
        errors.append(
            "settings `client_id` and `client_secret` (or `auth_token`) are missing; "
            "create credentials under App Settings > Dev Tools > API Scopes"
        )
    elif (
        config.get("client_secret") and not config.get("client_id") and not config.get("auth_token")
    ):
        errors.append("setting `client_id` is missing; it goes with `client_secret`")
    for name in ("bot_ids", "channels"):
        if any(not isinstance(v, str) or not v.strip() for v in config.get(name) or []):
            errors.append(f"setting `{name}` has a blank or non-text entry")
    if config.get("api_scope", "bot") == "bot" and not config.get("bot_ids"):
        errors.append(
            "setting `bot_ids` is empty; api_scope 'bot' needs at least one app ID "
            "(App Settings > App Profile), or use api_scope 'admin' for the whole account"
        )
    errors.extend(_url_errors(str(config.get("api_url", ""))))
    if str(config.get("start_date", "")).strip() == "" and "start_date" in config:
        errors.append("setting `start_date` is empty; it needs an ISO 8601 date like 2024-01-01")
    for name, value in config.items():
        if isinstance(value, (float, Decimal)) and not math.isfinite(value):
            errors.append(f"setting `{name}` is {value}, not a finite number")
    dates = {}
    for name in ("start_date", "end_date"):
        value = config.get(name)
        if value in (None, ""):
            continue
        try:
            dates[name] = parse_setting_datetime(str(value))
        except ValueError:
            errors.append(
                f"setting `{name}` is {value!r}, not an ISO 8601 date or date-time "
                "(e.g. 2024-01-01 or 2024-01-01T00:00:00Z)"
            )
    if "start_date" in dates and "end_date" in dates and dates["end_date"] < dates["start_date"]:
        errors.append(
            f"setting `end_date` ({config['end_date']}) is before `start_date` "
            f"({config['start_date']})"
        )
    zone = str(config.get("api_timezone", "UTC"))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(f"setting `api_timezone` is {zone!r}, not an IANA zone like 'Europe/Berlin'")
    errors.extend(_stream_map_errors(config))
    return errors


# `config['name']` or `config.get('name', ...)` in a stream map expression: a value it reads
# from `stream_map_config`.
_MAP_CONFIG_READ = re.compile(r"""\bconfig\s*(?:\[|\.get\s*\()\s*(['"])(.+?)\1""")


def _stream_map_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """A value a stream map reads must be set and not blank: missing, the run would fail at the
    first record; blank, a hash "salted" with nothing is a plain hash of a phone number."""
    maps = config.get("stream_maps")
    given = config.get("stream_map_config")
    if not isinstance(maps, dict):
        return []
    given = given if isinstance(given, dict) else {}
    errors = []
    for stream, definition in maps.items():
        if not isinstance(definition, dict):
            continue  # None drops the stream, a string renames it: nothing is read
        for prop, expression in definition.items():
            for _, name in _MAP_CONFIG_READ.findall(str(expression)):
                value = given.get(name)
                if value is not None and (not isinstance(value, str) or value.strip()):
                    continue
                hint = (
                    " (for Meltano's tap-kore-billing-hashed: export KORE_HASH_SALT)"
                    if name == "hash_salt"
                    else ""
                )
                errors.append(
                    f"setting `stream_map_config` has no value for {name!r}, which `stream_maps` "
                    f"reads for {stream}.{prop}; set it{hint}"
                )
    return errors


def _url_errors(url: str) -> list[str]:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return [f"setting `api_url` is {url!r}, not a URL like https://platform.kore.ai"]
    if parsed.scheme == "http" and not _is_loopback(parsed.hostname):
        return [
            f"setting `api_url` must use https (got {url!r}); credentials must not travel "
            "in clear text (http is allowed only for loopback hosts)"
        ]
    return []


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main() -> None:
    """Console script: the SDK's command line, with failures as one clear line, exit 1."""
    logger = logging.getLogger(TapKoreBilling.name)
    try:
        command = TapKoreBilling.cli  # sets up the SDK's logging, which every line below uses
        args, notes = prepare_arguments(sys.argv[1:])
        for note in notes:
            logger.info("%s", note)
        command(args=args)
    except ConfigValidationError as exc:
        for error in exc.errors or [str(exc)]:
            logger.error("%s", error)
        sys.exit(1)
    except DownstreamClosedError as exc:
        # Keep Python from printing another error while flushing the closed pipe at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        logger.error("tap-kore-billing stopped: %s", exc)
        sys.exit(1)
    except (TapKoreBillingError, FatalAPIError) as exc:
        logger.error("tap-kore-billing failed: %s", exc)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - anything else still ends as one line, not a traceback
        logger.error("tap-kore-billing failed: %s: %s", type(exc).__name__, exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
