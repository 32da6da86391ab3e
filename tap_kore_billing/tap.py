"""tap-kore-billing: the tap's name, capabilities, settings and streams."""

from __future__ import annotations

import logging
import typing as t
from functools import cached_property

from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TapCapabilities
from singer_sdk.tap_base import CliTestOptionValue

from tap_kore_billing.apps.inventory import AppInventory
from tap_kore_billing.client.api import KoreApi
from tap_kore_billing.core.errors import TapKoreBillingError
from tap_kore_billing.run.settings import SETTINGS_SCHEMA
from tap_kore_billing.run.settings_check import (
    check_settings,
    environment_settings,
    named_settings,
)
from tap_kore_billing.run.signals import on_stop_signals
from tap_kore_billing.run.writer import BufferedMsgSpecWriter, EncodedStateWriter
from tap_kore_billing.streams import (
    AppLinksStream,
    AppsStream,
    BillingSessionsStream,
    BillingUsageSummaryStream,
)
from tap_kore_billing.streams.base import KoreBillingStream

if t.TYPE_CHECKING:
    import click
    from singer_sdk.streams import Stream

ENV_PREFIX = "TAP_KORE_BILLING_"
# Stand-ins for the settings that name an account, so that discovery checks every other value.
ACCOUNT_PLACEHOLDERS: dict[str, t.Any] = {
    "start_date": "2000-01-01T00:00:00Z",
    "client_id": "discovery-needs-no-account",
    "client_secret": "discovery-needs-no-account",
    "bot_ids": ["st-discovery-needs-no-account"],
}


def _not_the_sdks_own_lines(record: logging.LogRecord) -> bool:
    # The tap reads the environment itself (and says so); the SDK would say it skipped it.
    # Discovery needs no setting (the catalog is the same for every account): the SDK's
    # warning "Config validation failed" would alarm a user who has not set credentials yet,
    # and a run that needs them names each missing one itself.
    message = str(record.msg)
    if record.levelno == logging.WARNING and message.startswith("Config validation failed"):
        return False
    return not message.startswith("Skipping parse of env var settings")


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
    config_jsonschema = SETTINGS_SCHEMA

    def __init__(
        self,
        *,
        config: dict | None = None,
        parse_env_config: bool = False,
        validate_config: bool = True,
        **kwargs: t.Any,
    ) -> None:
        """Settings are typed and checked here, before the SDK sees them: every problem is
        named at once, in plain words (the SDK's parser stops at the first, with a bare
        ValueError)."""
        if _not_the_sdks_own_lines not in self.logger.filters:
            self.logger.addFilter(_not_the_sdks_own_lines)
        settings = dict(config or {})
        if parse_env_config:
            if validate_config:
                self.logger.info("Reading settings from %s* environment variables", ENV_PREFIX)
            settings.update(environment_settings(self.settings_schema(), ENV_PREFIX))
        if validate_config:
            errors = check_settings(settings, self.settings_schema(), self.logger)
        else:
            settings, errors = self._check_for_discovery(settings), []
        if errors:
            raise ConfigValidationError(
                "Config validation failed", errors=errors, schema=self.config_jsonschema
            )
        super().__init__(config=settings, validate_config=validate_config, **kwargs)
        # Seam (listed in streams/base.py): no public hook sets the tap's StateWriter.
        self._state_writer = t.cast("t.Any", EncodedStateWriter(self.message_writer))
        on_stop_signals(self.logger, self._write_last_state)

    def _check_for_discovery(self, settings: dict[str, t.Any]) -> dict[str, t.Any]:
        """Discovery (`--discover`, `meltano select --list`, and Meltano before every run)
        needs no account, and its catalog depends on no value of ours: settings that name an
        account may be missing, and a bad value falls back to its default here (the sync names
        it, with the others). Nothing is announced, so a `meltano run` shows the settings once."""
        absent = {
            name: value
            for name, value in ACCOUNT_PLACEHOLDERS.items()
            if settings.get(name) in (None, "", [])
        }
        if settings.get("auth_token"):
            absent.pop("client_id", None)
            absent.pop("client_secret", None)
        checked = {**settings, **absent}
        errors = check_settings(checked, self.settings_schema(), self.logger, announce=False)
        properties = self.settings_schema()["properties"]
        for name in named_settings(errors):
            checked.pop(name, None)
            if "default" in properties.get(name, {}):
                checked[name] = properties[name]["default"]
        return {name: value for name, value in checked.items() if name not in absent}

    @classmethod
    def settings_schema(cls) -> dict[str, t.Any]:
        """The tap's settings and the SDK's own (stream maps, flattening, batch files)."""
        schema = {**cls.config_jsonschema, "properties": dict(cls.config_jsonschema["properties"])}
        cls.append_builtin_config(schema)
        return schema

    @cached_property
    def api(self) -> KoreApi:
        """The one API client every stream uses (one quota budget for the whole run)."""
        return KoreApi(self.config, user_agent=f"{self.name}/{self.plugin_version}")

    @cached_property
    def apps(self) -> AppInventory:
        """The run's apps and routing links, read once for every stream."""
        return AppInventory(self.config, self.api, self.logger)

    def discover_streams(self) -> list[Stream]:
        return [
            BillingSessionsStream(self, self.api, self.apps),
            BillingUsageSummaryStream(self, self.api, self.apps),
            AppsStream(self, self.apps),
            AppLinksStream(self, self.apps),
        ]

    @property
    def streams(self) -> dict[str, Stream]:
        """The streams in the order they sync: the SDK sorts them by name (load_streams,
        final) and syncs in this dict's order; the inventory streams go last, so `apps` can
        say which apps the billing streams could read."""
        found = super().streams
        last = (AppsStream.name, AppLinksStream.name)
        ordered = {name: stream for name, stream in found.items() if name not in last}
        ordered.update({name: found[name] for name in last if name in found})
        return ordered

    def load_state(self, state: dict[str, t.Any]) -> None:
        # A whole STATE message, as the tap prints it, holds the state in its `value`.
        if state.get("type") == "STATE" and isinstance(state.get("value"), dict):
            state = state["value"]
        streams = {BillingSessionsStream.name, BillingUsageSummaryStream.name}
        streams |= {AppsStream.name, AppLinksStream.name}
        named = set(state.get("bookmarks") or {})
        if named and not named & streams:
            # A misspelt stream name would otherwise mean a silent full backfill.
            raise TapKoreBillingError(
                f"the state has bookmarks for {', '.join(sorted(named))} but none for this "
                f"tap's streams ({', '.join(sorted(streams))}); fix the state, or pass {{}} "
                "to start from start_date"
            )
        super().load_state(state)

    def _write_last_state(self) -> str:
        """On a stop signal: send the state in memory, unless BATCH mode holds records in a
        batch file not written yet (there the last STATE sent, after its file, stands)."""
        if any(
            isinstance(stream, KoreBillingStream) and stream.get_batch_config(self.config)
            for stream in self.streams.values()
        ):
            return "in BATCH mode the last STATE sent stands"
        self.state_writer.write_state(self.state)
        return "the last STATE message covers every record written before it"

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
        try:
            tap.check_connection()
        finally:
            # --test runs while click is still parsing, before it would close the --catalog
            # and --state files it opened: a failed check must close them itself.
            ctx.close()
        ctx.exit()

    def check_connection(self) -> str:
        """A request or two per partition and stream that prove host, credentials, scope and
        each app, whatever start_date is; no records, no state."""
        self.api.checking_connection = True
        streams = [s for s in self.streams.values() if isinstance(s, KoreBillingStream)]
        checked = "; ".join(stream.check_connection() for stream in streams)
        self.logger.info("Connection test passed: %s", checked)
        return checked
