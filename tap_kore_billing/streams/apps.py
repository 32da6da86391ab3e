"""The `apps` and `app_links` streams: the account's inventory and its routing, a full table
each run. They sync after the billing streams, so `apps` can say which apps those could read."""

from __future__ import annotations

import typing as t
from importlib import resources

from singer_sdk import SchemaDirectory, Stream, StreamSchema

from tap_kore_billing.core.words import counted

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_kore_billing.apps.inventory import AppInventory

_SCHEMAS = SchemaDirectory(resources.files("tap_kore_billing") / "schemas")


class _InventoryStream(Stream):
    """A stream whose records the run's app inventory holds."""

    schema = StreamSchema(_SCHEMAS)

    def __init__(self, tap: Tap, apps: AppInventory) -> None:
        super().__init__(tap)
        self.apps = apps


class AppsStream(_InventoryStream):
    """One record per app: name, status, purpose, links, and whether its billing data could
    be read this run."""

    name = "apps"
    primary_keys: t.ClassVar[list[str]] = ["botId"]

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        records = self.apps.app_records()
        self.logger.info("Stream %s done: %s", self.name, counted(len(records), "app"))
        return records


class AppLinksStream(_InventoryStream):
    """One record per routing link of a Parent app to a linked app, published or configured."""

    name = "app_links"
    primary_keys: t.ClassVar[list[str]] = ["parentBotId", "linkedBotId", "state"]

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        records = self.apps.link_records()
        self.logger.info("Stream %s done: %s", self.name, counted(len(records), "link"))
        return records
