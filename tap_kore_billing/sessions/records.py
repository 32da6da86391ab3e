"""Billing session rows as records: every schema field (absent ones null), every value a string
or null, datetimes as ISO 8601 UTC. It runs per session, so what can be checked once per page
(value types, unknown fields) is checked for the whole page at once."""

from __future__ import annotations

import json
import logging
import operator
import threading
import typing as t
from itertools import chain

from tap_kore_billing.core.datetimes import UnparseableDatetimeError, api_datetime_to_iso
from tap_kore_billing.core.errors import TapKoreBillingError
from tap_kore_billing.core.partitions import ACCOUNT_WIDE

if t.TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import tzinfo

    from tap_kore_billing.core.partitions import Partition

DATETIME_FIELDS = (
    "conversationSessionStartDateTime",
    "conversationSessionEndDateTime",
    "billingSessionStartDateTime",
    "billingSessionEndDateTime",
)
_TEXT_OR_NULL = frozenset({str, type(None)})


class SessionRecords:
    """Turns pages of session rows into records; reports fields the schema lacks, once."""

    def __init__(
        self, fields: Iterable[str], zone: tzinfo, zone_name: str, logger: logging.Logger
    ) -> None:
        self._fields = tuple(fields)
        self._field_set = frozenset(self._fields)
        # The values other than datetimes, of a record, as a tuple.
        others = [field for field in self._fields if field not in DATETIME_FIELDS]
        self._others = operator.itemgetter(*others) if len(others) > 1 else _as_tuple(others)
        self._zone = zone
        self._zone_name = zone_name
        self._logger = logger
        self._reported: set[str] = set()
        self._report_lock = threading.Lock()

    def of_page(  # noqa: C901 - one tight loop per page: each branch is a per-row check
        self, rows: list[t.Any], partition: Partition
    ) -> list[dict[str, t.Any]]:
        fields = self._fields
        # A conversation's billing sessions repeat its start and end, and each one starts
        # where the one before it ended: a page's datetimes repeat, so each is converted once.
        converted: dict[str, str] = {}
        records = []
        for row in rows:
            if type(row) is not dict or not row.get("billingSessionId"):
                raise TapKoreBillingError(
                    f"partition {partition}: a session row has no billingSessionId: "
                    f"{str(row)[:200]}"
                )
            get = row.get
            record = {field: get(field) for field in fields}
            for field in DATETIME_FIELDS:
                raw = record[field]
                if type(raw) is str and raw:
                    iso = converted.get(raw)
                    if iso is None:
                        iso = converted[raw] = self._to_iso(raw, field, record)
                    record[field] = iso
                elif raw is None or raw == "":
                    record[field] = None
                else:
                    record[field] = self._to_iso(as_text(raw), field, record)
            if record["botId"] is None or record["channel"] is None:
                _fill_from_partition(record, partition)
            records.append(record)
        # Datetimes are text or null by now; the other values are checked for the whole page.
        every_value = chain.from_iterable(map(self._others, records))
        if not _TEXT_OR_NULL.issuperset(map(type, every_value)):
            # Conformed here instead of by the SDK's generic pass.
            for record in records:
                for field, value in record.items():
                    if value is not None and type(value) is not str:
                        record[field] = as_text(value)
        if not self._field_set.issuperset(chain.from_iterable(rows)):
            self._report_extra_fields(set(chain.from_iterable(rows)))
        return records

    def _to_iso(self, raw: str, field: str, record: dict[str, t.Any]) -> str:
        try:
            return api_datetime_to_iso(raw, self._zone)
        except UnparseableDatetimeError as exc:
            raise TapKoreBillingError(
                f"record billingSessionId={record['billingSessionId']}: cannot parse "
                f"{field} value {raw!r} (expected like '03-10-2021 2:05:03 pm' in "
                f"api_timezone {self._zone_name})"
            ) from exc

    def _report_extra_fields(self, names: set[str]) -> None:
        with self._report_lock:
            new = names - self._field_set - self._reported
            self._reported |= new
        if new:
            self._logger.warning(
                "Schema drift: the API sent fields the schema does not have, not extracted: %s",
                ", ".join(sorted(new)),
            )


def _as_tuple(fields: list[str]) -> t.Callable[[dict[str, t.Any]], tuple[t.Any, ...]]:
    """Like `operator.itemgetter(*fields)`, a tuple even for one field or none."""
    return lambda record: tuple(record[field] for field in fields)


def _fill_from_partition(record: dict[str, t.Any], partition: Partition) -> None:
    # Rows that omit the app or channel still belong to the partition that asked for them.
    if record["botId"] is None and partition.bot_id != ACCOUNT_WIDE:
        record["botId"] = partition.bot_id
    if record["channel"] is None and partition.channel is not None:
        record["channel"] = partition.channel


def as_text(value: object) -> str:
    """A non-string value where the API documents a string: keep it, as text."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
