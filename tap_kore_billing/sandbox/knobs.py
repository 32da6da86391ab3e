"""Every knob of the emulator, declared once: its name, default, check and help.

`Sandbox(**knobs)`, the command line (`kore-billing-sandbox --max-page-size 20`) and the
runtime control endpoint (`POST /__sandbox/configure`) all read this table, so a new knob is
one line here. Data knobs shape the generated sessions and are fixed once the emulator runs;
the others may change while it serves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tap_kore_billing.sandbox.data import FILTER_FIELDS
from tap_kore_billing.sandbox.knob_checks import (
    app_numbers,
    channels,
    count,
    discrepancies,
    id_set,
    non_empty_str,
    non_negative_float,
    one_of,
    optional_datetime,
    optional_epoch,
    optional_limit,
    pairs,
    positive_int,
    rate,
)
from tap_kore_billing.sandbox.planted import audit_cases


@dataclass(frozen=True)
class Knob:
    """One setting of the emulator."""

    name: str
    default: object
    check: Callable[[Any], object]  # the value as used (from a Python value or CLI text)
    help: str
    runtime: bool = True  # may change while serving
    # The command line's spelling when not --name-with-dashes ("" for no flag: a value the
    # command line cannot spell, or one with its own flag in __main__).
    flag: str | None = None
    choices: tuple[str, ...] | None = None


_PAGE_POLICIES = ("cap", "reject", "fail")
_ADMIN_PATHS = ("bots", "plain", "both")
_BUCKET_BY = ("start", "end")
_BOTS_OFFSETS = ("rows", "pages", "ignored")

KNOBS: tuple[Knob, ...] = (
    # -- the generated data ----------------------------------------------------------------
    Knob("seed", 1, int, "seed of the generated sessions", runtime=False),
    Knob("apps", 3, positive_int, "apps (bots) of the account", runtime=False),
    Knob(
        "channels",
        ("rtm", "ivr", "msteams", "whatsapp"),
        channels,
        "channels of the sessions (comma-separated)",
        runtime=False,
    ),
    Knob(
        "sessions",
        2000,
        count,
        "sessions visible from the start (without end: per 120 days)",
        runtime=False,
    ),
    Knob("late", 0, count, "hidden until reveal(): ended in the 12 h before end", runtime=False),
    Knob("new", 0, count, "hidden until reveal(): in the hour after end", runtime=False),
    Knob(
        "idle_apps", 0, count, "apps with sessions only in the range's first fifth", runtime=False
    ),
    Knob("start", None, optional_datetime, "ISO 8601; default end - 120 days", runtime=False),
    Knob(
        "end",
        None,
        optional_datetime,
        "ISO 8601; default now - 1 hour, each UTC day's sessions then the same in every run",
        runtime=False,
    ),
    Knob("tz", "UTC", non_empty_str, "zone of the API's datetime strings", runtime=False),
    Knob(
        "now",
        None,
        optional_datetime,
        "ISO 8601; the instant a run without --end takes as now (default: the real time)",
        runtime=False,
    ),
    Knob(
        "notification_fraction",
        0.15,
        rate,
        "Alert/Proactive Notifications rows (no conversation fields)",
        runtime=False,
    ),
    Knob(
        "plain_session_fraction",
        0.1,
        rate,
        "rows of type Sessions (no conversation fields)",
        runtime=False,
    ),
    # Off by default: the documented fields are what an account sends; on, the tap's schema
    # drift warning has something to name.
    Knob(
        "extra_field_fraction",
        0.0,
        rate,
        "rows with fields the API does not document",
        runtime=False,
    ),
    Knob(
        "boundary_fraction", 0.03, rate, "sessions at UTC midnights (window edges)", runtime=False
    ),
    Knob(
        "audit_cases",
        (),
        audit_cases,
        "billing sessions that break one billing rule each, FINDING:APP:DAY (planted.py)",
        runtime=False,
        flag="",  # --audit-case FINDING:APP:DAY, repeatable, in __main__
    ),
    # -- the app inventory (Get Bots, Get Linked Apps) ----------------------------------------
    Knob(
        "links",
        (),
        pairs,
        "published links PARENT:LINKED, 1-based, e.g. 1:2,1:3 (app 1 routes to apps 2 and 3)",
        runtime=False,
    ),
    Knob("draft_links", (), pairs, "configured-only links, like --links", runtime=False),
    Knob(
        "unreadable_apps",
        (),
        app_numbers,
        "1-based apps whose app-scope paths answer 403 (admin paths still list them), e.g. 3",
        runtime=False,
    ),
    Knob(
        "hidden_apps",
        0,
        count,
        "the last N apps are added later: absent from Get Bots and links until reveal()",
        runtime=False,
    ),
    Knob(
        "planted_secret",
        None,
        non_empty_str,
        "text in every app's jwtApps clientSecret; default: generated, obviously fake",
        runtime=False,
    ),
    Knob(
        "bots_offset",
        "rows",
        one_of(*_BOTS_OFFSETS),
        "what Get Bots' offset counts: rows, pages, or ignored (always the first page)",
        choices=_BOTS_OFFSETS,
    ),
    # -- paging and ranges -----------------------------------------------------------------
    Knob("max_page_size", 50, positive_int, "rows a page holds at most"),
    Knob(
        "oversized_limit",
        "cap",
        one_of(*_PAGE_POLICIES),
        "a limit above max_page_size is capped silently, refused (400) or fails (500)",
        choices=_PAGE_POLICIES,
    ),
    Knob("max_range_days", None, optional_limit, "longest fromDate..toDate; default 3 months"),
    Knob(
        "filter_field",
        "start",
        one_of(*FILTER_FIELDS),
        "which datetime fromDate/toDate filter on",
        choices=FILTER_FIELDS,
    ),
    # -- quotas ------------------------------------------------------------------------------
    Knob("rate_per_minute", None, optional_limit, "calls per holder per rolling minute"),
    Knob("rate_per_hour", None, optional_limit, "calls per holder per rolling hour"),
    Knob("retry_after", True, bool, "send Retry-After with each 429"),
    Knob(
        "throttle_next",
        0,
        count,
        "the next N calls get a 429 whatever the quota (another integration spent it)",
    ),
    # -- faults and timing -----------------------------------------------------------------
    Knob("fault_seed", 0, int, "seed of the fault rolls and of the latency jitter"),
    Knob("error_rate", 0.0, rate, "fraction of calls answered 500/503"),
    Knob("drop_rate", 0.0, rate, "fraction of calls whose connection is dropped"),
    Knob("truncate_rate", 0.0, rate, "fraction of 200s with half a body"),
    Knob("slow_rate", 0.0, rate, "fraction of calls delayed by slow_seconds"),
    Knob("slow_seconds", 2.0, non_negative_float, "delay of a slow call"),
    Knob(
        "latency_seconds",
        0.0,
        non_negative_float,
        "service time of every answer, like a remote API's (0: none)",
    ),
    Knob("latency_per_row_seconds", 0.0, non_negative_float, "added per row served"),
    Knob("latency_jitter", 0.0, rate, "latencies vary by +- this fraction, uniformly"),
    Knob("stall_after_skip", None, optional_limit, "from this skip on: no rows, moreAvailable"),
    Knob(
        "corrupt_ids",
        (),
        id_set,
        "sessions whose end datetime is unparseable",
        flag="",
    ),
    # -- credentials and access ------------------------------------------------------------
    Knob("client_id", "cs-sandbox-0000", non_empty_str, "the app's Client ID"),
    Knob(
        "client_secret",
        None,
        non_empty_str,
        "default: $KORE_SANDBOX_CLIENT_SECRET, else a generated one (printed)",
    ),
    Knob("enforce_jti", True, bool, "refuse a JWT whose jti was seen"),
    Knob(
        "admin_enabled", True, bool, "the account-wide paths answer (else 403)", flag="--no-admin"
    ),
    Knob(
        "known_apps_only",
        True,
        bool,
        "an unknown botId is refused with 403 (else: no rows)",
        flag="--allow-unknown-apps",
    ),
    # -- publication -------------------------------------------------------------------------
    Knob("publication_delay_hours", 0.0, non_negative_float, "sessions show this long after"),
    Knob("late_fraction", 0.0, rate, "fraction published late_delay_hours later still"),
    Knob("late_delay_hours", 0.0, non_negative_float, "extra delay of the late ones"),
    Knob("clock", None, optional_epoch, "the emulator's now for publication (epoch or ISO)"),
    # -- usage summary jobs ----------------------------------------------------------------
    Knob("summary_polls", 2, count, "status GETs a job stays IN_PROGRESS"),
    Knob("summary_fail", False, bool, "every job ends FAILED"),
    Knob(
        "summary_foreign_polls",
        0,
        count,
        "status GETs after each POST that show a second client's finished job",
    ),
    Knob(
        "summary_admin_path",
        "plain",
        one_of(*_ADMIN_PATHS),
        "which account-wide path exists: /api/public/bots/... or /api/public/...",
        choices=_ADMIN_PATHS,
    ),
    Knob(
        "summary_bucket_by",
        "start",
        one_of(*_BUCKET_BY),
        "sessions counted in the period they start or end in",
        choices=_BUCKET_BY,
    ),
    Knob("summary_hourly_gaps", True, bool, "hourly results skip hours without sessions"),
    Knob(
        "summary_discrepancies",
        (),
        discrepancies,
        "counters shifted away from the detail rows",
        flag="",  # --summary-discrepancy APP:DAY:UNIT:DELTA, in __main__
    ),
    Knob("summary_hang", False, bool, "jobs never finish"),
    Knob("summary_trouble_after", 0, count, "summary_fail and summary_hang spare the first N jobs"),
    Knob("summary_throttle_polls", 0, count, "the first N status GETs of each job answer 429"),
)

BY_NAME: dict[str, Knob] = {knob.name: knob for knob in KNOBS}
RUNTIME_KNOBS = frozenset(knob.name for knob in KNOBS if knob.runtime)
DATA_KNOBS = frozenset(knob.name for knob in KNOBS if not knob.runtime)


def checked(name: str, value: object) -> object:
    """`value` as knob `name` uses it; ValueError naming the knob when it does not pass."""
    try:
        return BY_NAME[name].check(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid {name}={value!r}: {exc}") from None


def resolve(given: Mapping[str, object]) -> dict[str, Any]:
    """Every knob's value: the given ones checked, the others their defaults (a default of
    None means "decided at start", e.g. a generated secret)."""
    unknown = sorted(set(given) - set(BY_NAME))
    if unknown:
        raise ValueError(f"unknown options: {unknown}")
    values: dict[str, Any] = {}
    for knob in KNOBS:
        if knob.name in given:
            values[knob.name] = checked(knob.name, given[knob.name])
        else:
            values[knob.name] = None if knob.default is None else knob.check(knob.default)
    return values
