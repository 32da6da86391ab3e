"""The API's datetime strings and the fromDate/toDate format."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from tap_kore_billing.core.datetimes import (
    UnparseableDatetimeError,
    api_datetime_to_iso,
    parse_api_datetime,
    parse_setting_datetime,
    to_api_timestamp,
    to_iso,
)

UTC = timezone.utc


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # The vendor's sample: month-day-year, 12-hour clock, unpadded hour.
        ("03-10-2021 2:05:03 pm", datetime(2021, 3, 10, 14, 5, 3, tzinfo=UTC)),
        ("03-10-2021 12:00:00 am", datetime(2021, 3, 10, 0, 0, 0, tzinfo=UTC)),
        ("03-10-2021 12:30:00 pm", datetime(2021, 3, 10, 12, 30, 0, tzinfo=UTC)),
        ("12-31-2021 11:59:59 pm", datetime(2021, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("03-10-2021 02:05:03 PM", datetime(2021, 3, 10, 14, 5, 3, tzinfo=UTC)),
        ("03-10-2021 2:05:03.250 pm", datetime(2021, 3, 10, 14, 5, 3, 250000, tzinfo=UTC)),
        ("03-10-2021 14:05:03", datetime(2021, 3, 10, 14, 5, 3, tzinfo=UTC)),
        ("2021-03-10T14:05:03.000Z", datetime(2021, 3, 10, 14, 5, 3, tzinfo=UTC)),
        ("2021-03-10T15:05:03+01:00", datetime(2021, 3, 10, 14, 5, 3, tzinfo=UTC)),
        # Close variants another deployment might send.
        ("3/10/2021, 2:05:03 PM", datetime(2021, 3, 10, 14, 5, 3, tzinfo=UTC)),
        ("03-10-2021  2:05:03 p.m.", datetime(2021, 3, 10, 14, 5, 3, tzinfo=UTC)),
        ("03-10-2021 2:05:03 pm UTC", datetime(2021, 3, 10, 14, 5, 3, tzinfo=UTC)),
        ("1615385103", datetime(2021, 3, 10, 14, 5, 3, tzinfo=UTC)),
        ("1615385103000", datetime(2021, 3, 10, 14, 5, 3, tzinfo=UTC)),
    ],
)
def test_parses_the_api_forms_to_utc(raw, expected):
    assert parse_api_datetime(raw) == expected


def test_zone_less_strings_are_read_in_the_api_timezone_across_dst():
    berlin = ZoneInfo("Europe/Berlin")
    winter = parse_api_datetime("01-15-2024 9:00:00 am", berlin)
    summer = parse_api_datetime("07-15-2024 9:00:00 am", berlin)
    assert winter == datetime(2024, 1, 15, 8, 0, tzinfo=UTC)
    assert summer == datetime(2024, 7, 15, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    ["13-40-2021 2:05:03 pm", "03-10-2021 13:05:03 pm", "11-20-26 2:20:03 pm", "soon", ""],
)
def test_rejects_what_is_not_a_datetime(raw):
    with pytest.raises(UnparseableDatetimeError):
        parse_api_datetime(raw)


def test_output_forms():
    instant = datetime(2021, 3, 10, 14, 5, 3, 515000, tzinfo=UTC)
    assert to_api_timestamp(instant) == "2021-03-10T14:05:03.515Z"
    assert to_iso(instant) == "2021-03-10T14:05:03.515000+00:00"


def test_settings_without_a_zone_are_utc():
    assert parse_setting_datetime("2024-01-01") == datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_setting_datetime("2024-01-01T02:00:00+02:00") == datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    [
        "03-10-2021 2:05:03 pm",
        "03-10-2021 12:00:00 am",
        "03-10-2021 12:30:00 pm",
        "12-31-2021 11:59:59 pm",
        "02-29-2024 1:00:00 am",
        "03-10-2021 02:05:03 PM",
        "03-10-2021 2:05:03.250 pm",
        "2021-03-10T14:05:03.000Z",
    ],
)
@pytest.mark.parametrize("zone", [UTC, ZoneInfo("America/New_York")])
def test_fast_conversion_agrees_with_the_general_parser(raw, zone):
    assert api_datetime_to_iso(raw, zone) == to_iso(parse_api_datetime(raw, zone))


@pytest.mark.parametrize(
    "raw",
    [
        "3-1-2021 2:05:03 pm",
        "03-10-2021 2:05:3 pm",
        "03-10-2021 0:05:03 am",
        "03-10-2021 2:05:60 pm",
        "03-10-2021 2:+5:03 pm",
        "03-10-+202 2:05:03 pm",
        "03-10-2021 2:05p:03 m",
        "03-10-2021 2:05:03 pm extra",
        "03-10-2021 1_2:05:03 pm",
        "003-10-2024 2:05:03 pm",
        "03-010-2024 2:05:03 pm",
        "03-10-2024 002:05:03 pm",
        "03-10-2024 \uff102:05:03 pm",
    ],
)
def test_fast_conversion_takes_exactly_what_the_general_parser_takes(raw):
    # The fast path caches pieces by their text; an odd piece must not borrow a cached answer.
    api_datetime_to_iso("03-10-2021 2:05:03 pm")
    try:
        expected = to_iso(parse_api_datetime(raw))
    except UnparseableDatetimeError:
        with pytest.raises(UnparseableDatetimeError):
            api_datetime_to_iso(raw)
    else:
        assert api_datetime_to_iso(raw) == expected


@pytest.mark.parametrize(
    "raw", ["02-30-2024 1:00:00 am", "03-10-2021 13:05:03 pm", "31-02-2024 25:61:00 xm"]
)
def test_fast_conversion_rejects_impossible_values(raw):
    with pytest.raises(UnparseableDatetimeError):
        api_datetime_to_iso(raw)
