"""tap-kore-billing: settings, their validation, the stream list and the command line."""

from __future__ import annotations

import ipaddress
import json
import logging
import sys
import typing as t
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TapCapabilities

from tap_kore_billing.datetimes import parse_setting_datetime
from tap_kore_billing.errors import TapKoreBillingError
from tap_kore_billing.streams import BillingSessionsStream, BillingUsageSummaryStream
from tap_kore_billing.writer import BufferedMsgSpecWriter

if t.TYPE_CHECKING:
    from singer_sdk.streams import Stream

LOOPBACK_HOSTS = {"localhost"}


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
            default=100,
            title="Page Size",
            description="`limit` asked per request. The server may send fewer rows.",
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
            default=4,
            title="Max Workers",
            description="Partitions fetched at once. Apps have separate quotas in `bot` scope, "
            "so a few workers shorten quota-bound runs; each partition's state stays exact.",
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
        coerce_errors = coerce_settings(self._config, self.config_jsonschema["properties"])
        try:
            errors = super()._validate_config(raise_errors=False)
        except ValueError as exc:
            errors = [str(exc)]
        errors = [_without_secret_values(e) for e in coerce_errors + errors]
        if not errors:
            errors = settings_errors(self.config)
        if errors and raise_errors:
            raise ConfigValidationError(
                "Config validation failed", errors=errors, schema=self.config_jsonschema
            )
        return errors

    def discover_streams(self) -> list[Stream]:
        return [BillingSessionsStream(self), BillingUsageSummaryStream(self)]


SECRET_SETTINGS = ("client_secret", "auth_token")


def coerce_settings(config: dict[str, t.Any], properties: dict[str, t.Any]) -> list[str]:
    """Turn text into numbers and lists where the schema wants them, in place.

    Environment variables (`--config ENV`, Meltano) carry every value as text; the SDK converts
    integers and arrays but not numbers. Arrays may come as JSON or comma-separated text.
    """
    errors = []
    for name, schema in properties.items():
        value = config.get(name)
        if not isinstance(value, str):
            continue
        types = schema.get("type", [])
        try:
            if "integer" in types:
                config[name] = int(value.strip())
            elif "number" in types:
                config[name] = float(value.strip())
            elif "array" in types:
                text = value.strip()
                config[name] = json.loads(text) if text.startswith("[") else text.split(",")
        except ValueError:
            errors.append(f"setting `{name}` is {value!r}, not a {'/'.join(types)}")
    return errors


def _without_secret_values(error: str) -> str:
    # JSON Schema messages quote the offending value: never for a secret.
    for name in SECRET_SETTINGS:
        if f"'{name}'" in error or f"`{name}`" in error:
            return f"setting `{name}` must be a string"
    return error


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
        TapKoreBilling.cli()
    except ConfigValidationError as exc:
        for error in exc.errors or [str(exc)]:
            logger.error("%s", error)
        sys.exit(1)
    except (TapKoreBillingError, FatalAPIError) as exc:
        logger.error("tap-kore-billing failed: %s", exc)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - anything else still ends as one line, not a traceback
        logger.error("tap-kore-billing failed: %s: %s", type(exc).__name__, exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
