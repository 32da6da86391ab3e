"""A bare hand-written extractor for the Billing Sessions API: the yardstick for the tap's speed.

It does the same work as tap-kore-billing (same windows, pages, JWT per request, datetime
normalisation, de-duplication and start_date..end_date filter) with nothing but requests, pyjwt,
orjson and msgspec, and writes Singer RECORD lines to stdout, a page at a time. No SCHEMA/STATE
messages, no client-side quota limiter, no checks the data does not need: it is the leanest
honest loop, there to show what one Python process can do, not to replace the tap.

    python benchmarks/reference_extractor.py --config config.json > records.jsonl
"""

from __future__ import annotations

import argparse
import calendar
import sys
import time
import uuid
import warnings
from datetime import datetime, timedelta, timezone, tzinfo
from typing import BinaryIO
from zoneinfo import ZoneInfo

import jwt
import msgspec
import orjson
import requests
from jwt.warnings import InsecureKeyLengthWarning

UTC = timezone.utc
BOT_PATH = "/api/public/bot/{bot_id}/getBillingSessionsDetails"
ADMIN_PATH = "/api/public/bots/getBillingSessionsDetails"
FIELDS = (
    "billingSessionId",
    "botId",
    "channel",
    "koreUserId",
    "channelUserId",
    "billingSessionType",
    "conversationSessionId",
    "conversationSessionStartDateTime",
    "conversationSessionEndDateTime",
    "billingSessionStartDateTime",
    "billingSessionEndDateTime",
)
DATETIME_FIELDS = FIELDS[7:]
REPLICATION_KEY = "billingSessionEndDateTime"
RETRIED = {429, 500, 502, 503, 504}


def parse_setting(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def add_months(value: datetime, months: int) -> datetime:
    index = value.month - 1 + months
    year, month = value.year + index // 12, index % 12 + 1
    return value.replace(
        year=year, month=month, day=min(value.day, calendar.monthrange(year, month)[1])
    )


def windows(start: datetime, end: datetime, days: int) -> list[tuple[datetime, datetime]]:
    # Contiguous: each window's end is the next one's start, capped at the API's three months.
    out = []
    cursor = start
    while cursor < end:
        upper = min(cursor + timedelta(days=days), add_months(cursor, 3), end)
        out.append((cursor, upper))
        cursor = upper
    return out


def api_timestamp(value: datetime) -> str:
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class UtcConverter:
    """`03-10-2021 2:05:03 pm` in UTC -> `2021-03-10T14:05:03+00:00`, from cached pieces: a run
    sees few distinct dates and at most 1,440 clock minutes per half-day."""

    def __init__(self) -> None:
        self.dates: dict[str, str] = {}
        self.minutes: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        day, clock, meridiem = text.split(" ")
        date_part = self.dates.get(day)
        if date_part is None:
            month, day_of_month, year = day.split("-")
            date_part = datetime(int(year), int(month), int(day_of_month)).date().isoformat()
            self.dates[day] = date_part
        minute, _, second = clock.rpartition(":")
        key = minute + meridiem
        time_part = self.minutes.get(key)
        if time_part is None:
            hour, minutes = minute.split(":")
            hour_24 = int(hour) % 12 + (12 if meridiem == "pm" else 0)
            time_part = self.minutes[key] = f"{hour_24:02d}:{int(minutes):02d}"
        return f"{date_part}T{time_part}:{second}+00:00"


def parse_api_datetime(text: str, zone: tzinfo) -> datetime:
    """`03-10-2021 2:05:03 pm` (zone-less, in `zone`) -> aware UTC; ISO 8601 as a fallback."""
    try:
        day_part, clock, meridiem = text.split()
        month, day, year = day_part.split("-")
        hour, minute, second = clock.split(":")
        hour_24 = int(hour) % 12 + (12 if meridiem.lower() == "pm" else 0)
        naive = datetime(int(year), int(month), int(day), hour_24, int(minute), int(second))
    except ValueError:
        naive = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if naive.tzinfo is not None:
            return naive.astimezone(UTC)
    if zone is UTC:
        return naive.replace(tzinfo=UTC)
    return naive.replace(tzinfo=zone).astimezone(UTC)


class Extractor:
    def __init__(self, config: dict) -> None:
        self.base = str(config.get("api_url", "https://platform.kore.ai")).rstrip("/")
        self.client_id = config["client_id"]
        self.secret = config["client_secret"]
        self.scope = config.get("api_scope", "bot")
        self.limit = int(config.get("page_size", 100))
        self.timeout = float(config.get("request_timeout", 60))
        self.tries = int(config.get("retry_attempts", 8))
        zone_name = str(config.get("api_timezone", "UTC"))
        self.zone: tzinfo = UTC if zone_name.upper() == "UTC" else ZoneInfo(zone_name)
        self.start_date = parse_setting(config["start_date"])
        self.end_date = parse_setting(config["end_date"]) if config.get("end_date") else None
        lookback = timedelta(hours=float(config.get("lookback_hours", 24)))
        fetch_to = min(datetime.now(UTC), self.end_date or datetime.now(UTC))
        self.windows = windows(
            self.start_date - lookback, fetch_to, int(config.get("window_days", 30))
        )
        apps = list(config.get("bot_ids") or []) or [None]
        channels = list(config.get("channels") or []) or [None]
        self.partitions = [(app, channel) for app in apps for channel in channels]
        self.http = requests.Session()
        self.encoder = msgspec.json.Encoder()
        self.to_utc_iso = UtcConverter() if self.zone is UTC else None
        # Set once for the process: the secret's length is the vendor's choice.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)

    def token(self) -> str:
        now = int(time.time())
        claims = {
            "appId": self.client_id,
            "sub": "reference-extractor",
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def post(self, path: str, body: dict) -> dict:
        data = orjson.dumps(body)
        for attempt in range(self.tries):
            # A fresh token per try: the API may accept each jti once.
            response = self.http.post(
                self.base + path,
                data=data,
                headers={"Content-Type": "application/json", "auth": self.token()},
                timeout=self.timeout,
            )
            if response.status_code not in RETRIED or attempt == self.tries - 1:
                break
            time.sleep(float(response.headers.get("Retry-After") or 2**attempt))
        response.raise_for_status()
        return orjson.loads(response.content)

    def to_iso(self, raw: str) -> str:
        if self.to_utc_iso is not None:
            return self.to_utc_iso(raw)
        return parse_api_datetime(raw, self.zone).isoformat()

    def run(self, out: BinaryIO) -> int:  # noqa: C901 - the lean loop, inline on purpose
        written = 0
        # ISO 8601 UTC strings of one form compare like the instants they name.
        start_iso = self.start_date.isoformat()
        end_iso = self.end_date.isoformat() if self.end_date else None
        to_iso = self.to_iso
        for app, channel in self.partitions:
            path = BOT_PATH.format(bot_id=app) if self.scope == "bot" else ADMIN_PATH
            previous_ids: set[str] = set()
            for start, end in self.windows:
                window_ids: set[str] = set()
                skip = 0
                while True:
                    body: dict = {
                        "fromDate": api_timestamp(start),
                        "toDate": api_timestamp(end),
                        "limit": self.limit,
                        "skip": skip,
                    }
                    if channel is not None:
                        body["channel"] = channel
                    if self.scope != "bot" and app is not None:
                        body["botId"] = app
                    page = self.post(path, body)
                    rows = page.get("sessions") or []
                    messages = []
                    for row in rows:
                        get = row.get
                        record = {field: get(field) for field in FIELDS}
                        for field in DATETIME_FIELDS:
                            raw = record[field]
                            record[field] = to_iso(raw) if raw else None
                        session_id = record["billingSessionId"]
                        # Window edges are shared and pages may repeat rows: emit each once.
                        if session_id in window_ids or session_id in previous_ids:
                            continue
                        window_ids.add(session_id)
                        ends_at = record[REPLICATION_KEY]
                        if ends_at is not None and (
                            ends_at < start_iso or (end_iso is not None and ends_at > end_iso)
                        ):
                            continue
                        messages.append(
                            {"type": "RECORD", "stream": "billing_sessions", "record": record}
                        )
                    if messages:
                        out.write(self.encoder.encode_lines(messages))
                        written += len(messages)
                    if not rows or page.get("moreAvailable") is False:
                        break
                    skip += len(rows)
                previous_ids = window_ids
        out.flush()
        return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the tap's config JSON file")
    args = parser.parse_args()
    with open(args.config, "rb") as handle:
        config = orjson.loads(handle.read())
    started = time.perf_counter()
    written = Extractor(config).run(sys.stdout.buffer)
    print(
        f"reference_extractor: {written} records in {time.perf_counter() - started:.2f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
