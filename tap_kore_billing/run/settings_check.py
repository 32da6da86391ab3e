"""The settings' values typed and checked: every problem named once, in plain words, with
what to do; never a secret's value.

Values come typed or as text: a config file (Meltano's included) holds numbers, booleans and
lists where meltano.yml declares those kinds, but fractions and dates as text (Meltano's
`decimal` and `date_iso8601` kinds break them), and environment variables (`--config ENV`) hold
only text. So values are typed here, where a bad one can be named, rather than by the SDK's
parser, which stops at the first with a bare ValueError.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import logging
import math
import os
import re
import typing as t
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import find_dotenv, load_dotenv
from singer_sdk.plugin_base import JSONSchemaValidator

from tap_kore_billing.core.datetimes import parse_setting_datetime
from tap_kore_billing.run.settings import OWN_SETTINGS, SECRET_SETTINGS

if t.TYPE_CHECKING:
    from jsonschema import ValidationError

LOOPBACK_HOSTS = {"localhost"}


def check_settings(
    config: dict[str, t.Any],
    schema: dict[str, t.Any],
    logger: logging.Logger,
    *,
    announce: bool = True,
) -> list[str]:
    """Type `config`'s values in place, fill in defaults (as the SDK's validator does) and
    return every problem, each once; warn of names that are not settings. With no problem
    and `announce`, log the settings in effect (secrets hidden)."""
    properties = schema["properties"]
    errors = coerce_settings(config, properties)
    errors += [_plain_words(error) for error in JSONSchemaValidator(schema).iter_errors(config)]
    errors = _one_per_setting(errors + settings_errors(config))
    for name in sorted(set(config) - set(properties)):
        close = difflib.get_close_matches(name, properties, n=1)
        logger.warning(
            "Setting `%s` is not a setting of this tap and is ignored%s",
            name,
            f" (did you mean `{close[0]}`?)" if close else "",
        )
    if not errors and announce:
        _warn_of_a_future_start(config, logger)
        shown = {
            name: "(set)" if name in SECRET_SETTINGS and value else value
            for name, value in config.items()
            if name in OWN_SETTINGS
        }
        logger.info("Settings in effect: %s", json.dumps(shown, sort_keys=True, default=_as_json))
    return errors


def _warn_of_a_future_start(config: t.Mapping[str, t.Any], logger: logging.Logger) -> None:
    # Not an error: a job may be set up before the go-live date. But a typo in the year would
    # otherwise be a green run with no data and no word.
    if not config.get("start_date"):
        return
    start = parse_setting_datetime(str(config["start_date"]))
    if start > datetime.now(tz=timezone.utc):
        logger.warning(
            "Setting `start_date` (%s) is in the future: nothing is extracted until then; "
            "check the year",
            config["start_date"],
        )


def environment_settings(schema: dict[str, t.Any], prefix: str) -> dict[str, t.Any]:
    """Settings from `<PREFIX><NAME>` variables (a `.env` file found upward from the working
    folder is loaded first, as singer-sdk does), as text: `coerce_settings` types them, and
    JSON text for objects and lists."""
    load_dotenv(find_dotenv(usecwd=True), override=False)
    found: dict[str, t.Any] = {}
    for name in schema["properties"]:
        variable = prefix + name.upper().replace("-", "_")
        if variable in os.environ:
            found[name] = os.environ[variable]
    return found


def coerce_settings(config: dict[str, t.Any], properties: dict[str, t.Any]) -> list[str]:
    """Turn text into numbers, booleans and lists where the schema wants them, in place; and a
    whole number written as a fraction (30.0, which a config file gives as a Decimal) into an
    integer where one is wanted. Arrays may come as JSON or comma-separated text.
    """
    errors = []
    for name, schema in properties.items():
        value = config.get(name)
        types = schema.get("type", [])
        if isinstance(value, (float, Decimal)) and "integer" in types:
            value = str(value)  # through _whole_number below, as if it were text
        elif not isinstance(value, str):
            continue
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
            elif "object" in types:
                config[name] = json.loads(text)
        except ValueError:
            shown = _shown(name, config[name])
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
    value = _shown(name, error.instance)
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


def _shown(name: str, value: object) -> str:
    """A value as an error message shows it: a secret hidden, text quoted, a fraction from a
    config file (a Decimal) as the number it is."""
    if name in SECRET_SETTINGS:
        return "(hidden)"
    return str(value) if isinstance(value, Decimal) else repr(value)


def _as_json(value: object) -> object:
    # The SDK reads fractions in a config file as Decimal: show them as the numbers they are.
    return float(value) if isinstance(value, Decimal) else str(value)


def named_settings(errors: list[str]) -> set[str]:
    """The settings these problems are about (each sentence starts by naming one)."""
    found = (re.match(r"settings? `([^`.]+)", error) for error in errors)
    return {match.group(1) for match in found if match}


def _one_per_setting(errors: list[str]) -> list[str]:
    """The first problem found with each setting; the others would only repeat it."""
    kept: dict[str, str] = {}
    for error in errors:
        match = re.match(r"settings? `([^`]+)`", error)
        kept.setdefault(match.group(1) if match else error, error)
    return list(kept.values())


def settings_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """Checks JSON Schema cannot express, each naming the setting and what to do."""
    return [
        *_credential_errors(config),
        *_app_errors(config),
        *_url_errors(str(config.get("api_url", ""))),
        *_number_and_date_errors(config),
        *_zone_errors(str(config.get("api_timezone", "UTC"))),
        *_stream_map_errors(config),
    ]


def _credential_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    if not config.get("auth_token") and not (
        config.get("client_id") and config.get("client_secret")
    ):
        return [
            "settings `client_id` and `client_secret` (or `auth_token`) are missing; "
            "create credentials under App Settings > Dev Tools > API Scopes"
        ]
    if config.get("client_secret") and not config.get("client_id") and not config.get("auth_token"):
        return ["setting `client_id` is missing; it goes with `client_secret`"]
    return []


def _app_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    errors = [
        f"setting `{name}` has a blank or non-text entry"
        for name in ("bot_ids", "channels")
        if any(not isinstance(v, str) or not v.strip() for v in config.get(name) or [])
    ]
    if config.get("api_scope", "bot") == "bot" and not config.get("bot_ids"):
        errors.append(
            "setting `bot_ids` is empty; api_scope 'bot' needs at least one app ID "
            "(App Settings > App Profile), or use api_scope 'admin' for the whole account"
        )
    return errors


def _number_and_date_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    errors = []
    if str(config.get("start_date", "")).strip() == "" and "start_date" in config:
        errors.append("setting `start_date` is empty; it needs an ISO 8601 date like 2024-01-01")
    errors += [
        f"setting `{name}` is {value}, not a finite number"
        for name, value in config.items()
        if isinstance(value, (float, Decimal)) and not math.isfinite(value)
    ]
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
    return errors


def _zone_errors(zone: str) -> list[str]:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return [f"setting `api_timezone` is {zone!r}, not an IANA zone like 'Europe/Berlin'"]
    return []


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
