"""The emulator bills like Kore.ai, and plants audit cases that break one rule each; all over
real HTTP.

The rule: a conversation session of L seconds holds ceil(L / 900) billing sessions of its user,
back to back inside it; other types are single sessions of at most 15 minutes. The findings
(issue 28), with a tolerance of 60 s: a session longer than 15 minutes; a session overlapping an
earlier one of the same koreUserId, botId and channel; a session outside its conversation; a
conversation named by more than max(1, ceil(seconds / 900)) sessions.

The planted cases land on apps and days drawn from a seed, new on each run; it is printed in
every assertion message, and KORE_AUDIT_SEED=<seed> repeats a run.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import secrets
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from tap_kore_billing.sandbox import Sandbox

UTC = timezone.utc
REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 60
WINDOW = 900
FINDINGS = (
    "longer_than_15_minutes",
    "overlaps_another_session",
    "outside_its_conversation",
    "over_counted",
)
START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2024, 4, 1, tzinfo=UTC)
SEED = int(os.environ.get("KORE_AUDIT_SEED") or secrets.randbelow(2**31))
WHY = f"(KORE_AUDIT_SEED={SEED})"


# -- over HTTP ----------------------------------------------------------------------------------


def token(sb: Sandbox) -> str:
    claims = {
        "appId": sb.client_id,
        "sub": "test",
        "jti": uuid.uuid4().hex,
        "exp": int(time.time()) + 600,
    }
    return jwt.encode(claims, sb.client_secret, algorithm="HS256")


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def served(sb: Sandbox) -> list[dict[str, Any]]:
    """Every row the admin path serves over the data's range (and an hour past it), read in
    windows of 80 days, as a client would."""
    url = f"{sb.url}/api/public/bots/getBillingSessionsDetails"
    rows: list[dict[str, Any]] = []
    low, high = sb.data_start, sb.data_end + timedelta(hours=1)
    with requests.Session() as http:
        while low <= high:
            top = min(low + timedelta(days=80), high)
            got = 0
            while True:
                body = {"fromDate": iso(low), "toDate": iso(top), "skip": got, "limit": 50}
                answer = http.post(url, json=body, headers={"auth": token(sb)}, timeout=10)
                assert answer.status_code == 200, answer.text
                page = answer.json()
                rows.extend(page["sessions"])
                got += len(page["sessions"])
                if not page["moreAvailable"]:
                    break
            low = top + timedelta(seconds=1)
    assert len({r["billingSessionId"] for r in rows}) == len(rows), "a row served twice"
    return rows


def summary_conversations(sb: Sandbox, bot_id: str, day: date) -> int:
    """The usage summary's `conversations` counter of one app and UTC day."""
    path = f"{sb.url}/api/public/bot/{bot_id}/billingsessionsummary"
    body = {
        "fromDate": f"{day.isoformat()}T00:00:00.000Z",
        "toDate": f"{day.isoformat()}T23:59:59.999Z",
        "unitType": ["conversations"],
        "groupByBot": "yes",
        "groupByPeriod": "date_day",
    }
    job = requests.post(path, json=body, headers={"auth": token(sb)}, timeout=10).json()
    for _ in range(10):  # the job stays IN_PROGRESS for a few status checks
        answer = requests.get(
            f"{path}/status?type=summary", headers={"auth": token(sb)}, timeout=10
        ).json()
        if answer["status"] != "IN_PROGRESS":
            break
    assert (answer["_id"], answer["status"]) == (job["_id"], "success")
    (group,) = answer["response"]["data"]
    (period,) = group["val"]
    return int(period["val"]["conversations"])


# -- what a finance reader checks ---------------------------------------------------------------


def when(text: str) -> int:
    """Epoch seconds of the API's `03-10-2021 2:05:03 pm` (rendered in UTC here)."""
    return int(datetime.strptime(text, "%m-%d-%Y %I:%M:%S %p").replace(tzinfo=UTC).timestamp())


def span(row: dict[str, Any]) -> tuple[int, int]:
    return when(row["billingSessionStartDateTime"]), when(row["billingSessionEndDateTime"])


def conversation_span(row: dict[str, Any]) -> tuple[int, int]:
    return (
        when(row["conversationSessionStartDateTime"]),
        when(row["conversationSessionEndDateTime"]),
    )


def by_conversation(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict]]:
    grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        if row.get("conversationSessionId"):
            grouped[row["botId"], row["conversationSessionId"]].append(row)
    for members in grouped.values():
        members.sort(key=span)
    return grouped


def overlaps(rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """(overlaps_another_session, ID, the other ID): a session overlapping, by more than the
    tolerance, one of the same user, app and channel that starts earlier (equal starts: the
    greater ID is the later one)."""
    found: set[tuple[Any, ...]] = set()
    per_user: dict[tuple[str, str, str], list[tuple[int, str, int]]] = defaultdict(list)
    for row in rows:
        start, end = span(row)
        key = (row["koreUserId"], row["botId"], row["channel"])
        per_user[key].append((start, row["billingSessionId"], end))
    for sessions in per_user.values():
        sessions.sort()
        for i, (start, billing_id, end) in enumerate(sessions):
            for _, other_id, other_end in sessions[:i]:
                if min(end, other_end) - start > TOLERANCE:
                    found.add(("overlaps_another_session", billing_id, other_id))
    return found


def audit(rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """Every finding in the rows: (finding, billingSessionId[, the other one]) for sessions,
    (over_counted, conversationSessionId, excess sessions) for conversations."""
    found = overlaps(rows)
    for row in rows:
        start, end = span(row)
        if end - start > WINDOW + TOLERANCE:
            found.add(("longer_than_15_minutes", row["billingSessionId"]))
        if row.get("conversationSessionId"):
            low, high = conversation_span(row)
            if start < low - TOLERANCE or end > high + TOLERANCE:
                found.add(("outside_its_conversation", row["billingSessionId"]))
    for (_, conversation_id), members in by_conversation(rows).items():
        low, high = conversation_span(members[0])
        allowed = max(1, math.ceil((high - low) / WINDOW))
        if len(members) > allowed:
            found.add(("over_counted", conversation_id, len(members) - allowed))
    return found


def expected_findings(cases: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    out: set[tuple[Any, ...]] = set()
    for case in cases:
        if case["finding"] == "over_counted":
            out.add(("over_counted", case["conversationSessionId"], case["excessSessions"]))
        elif case["finding"] == "overlaps_another_session":
            (flagged,) = case["billingSessionIds"]
            out.add(("overlaps_another_session", flagged, case["otherBillingSessionId"]))
        else:
            (flagged,) = case["billingSessionIds"]
            out.add((case["finding"], flagged))
    return out


def assert_billed_by_the_rule(rows: list[dict[str, Any]], since: datetime) -> None:
    """Conversations of `since` or later: ceil(L / 900) sessions, back to back, from its start to
    its end; every other row a single session of at most 15 minutes."""
    for row in rows:
        start, end = span(row)
        assert 0 < end - start <= WINDOW, row
        if row["billingSessionType"] != "Conversations":
            assert "conversationSessionId" not in row, row
    edges: dict[int, int] = defaultdict(int)
    for members in by_conversation(rows).values():
        low, high = conversation_span(members[0])
        if low < since.timestamp():
            continue  # begun before the data's range: its first sessions are not served
        assert all(conversation_span(m) == (low, high) for m in members)
        assert len({(m["koreUserId"], m["channelUserId"], m["channel"]) for m in members}) == 1
        times = [span(m) for m in members]
        assert times[0][0] == low, members
        assert times[-1][1] == high, members
        assert all(a[1] == b[0] for a, b in itertools.pairwise(times)), members
        assert len(members) == math.ceil((high - low) / WINDOW), members
        if high - low in (WINDOW, WINDOW + 1):
            edges[high - low] += 1
            assert len(members) == (1 if high - low == WINDOW else 2), members
    assert edges[WINDOW], "no conversation of exactly 15:00"
    assert edges[WINDOW + 1], "no conversation of 15:01"


# -- the rule in generated data -----------------------------------------------------------------


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({}, id="defaults"),
        pytest.param(
            {
                "seed": 5,
                "apps": 4,
                "sessions": 3000,
                "late": 40,
                "new": 25,
                "idle_apps": 1,
                "hidden_apps": 1,
                "start": START,
                "end": END,
                "filter_field": "end",
                "boundary_fraction": 0.2,
                "notification_fraction": 0.3,
                "plain_session_fraction": 0.2,
            },
            id="every-data-knob",
        ),
        pytest.param(
            {
                "apps": 1,
                "channels": "rtm",
                "sessions": 3000,
                "start": END - timedelta(days=2),
                "end": END,
            },
            id="crowded",  # each user has about ten activities in two days on one channel
        ),
    ],
)
def test_generated_sessions_follow_the_billing_rule(knobs: dict[str, Any]) -> None:
    with Sandbox(**knobs) as sb:
        sb.reveal()
        rows = served(sb)
        assert len(rows) == len(sb.expected())
        types = {r["billingSessionType"] for r in rows}
        assert types == {
            "Conversations",
            "Sessions",
            "Alert Notifications",
            "Proactive Notifications",
        }
        assert_billed_by_the_rule(rows, sb.data_start)
        assert audit(rows) == set()


# -- planted audit cases ------------------------------------------------------------------------


def drawn_cases(apps: int, first: date, days: int) -> list[str]:
    """Two cases of each finding on apps and days drawn from SEED (two findings may share an app
    and a day)."""
    rng = random.Random(SEED)  # noqa: S311 - test data, repeatable from the printed seed
    return [
        f"{finding}:{rng.randint(1, apps)}:{first + timedelta(days=rng.randrange(days))}"
        for finding in FINDINGS
        for _ in range(2)
    ]


@pytest.fixture(scope="module")
def planted() -> Any:
    knobs: dict[str, Any] = {"seed": SEED, "apps": 3, "sessions": 1500, "start": START, "end": END}
    cases = drawn_cases(3, START.date(), (END - START).days)
    with Sandbox(**knobs, audit_cases=",".join(cases)) as sb, Sandbox(**knobs) as plain:
        yield sb, cases, plain


def test_each_planted_case_breaks_its_rule_and_no_other(planted: Any) -> None:
    sb, cases, plain = planted
    listed = sb.planted_audit_cases()
    assert [f"{c['finding']}:{c['app']}:{c['day']}" for c in listed] == list(
        dict.fromkeys(cases)
    ), WHY
    rows = served(sb)
    assert audit(rows) == expected_findings(listed), WHY
    # The cases add their rows and change no other.
    added = {i for case in listed for i in case["addedBillingSessionIds"]}
    before = {r["billingSessionId"]: r["raw"] for r in plain.expected()}
    assert {r["billingSessionId"] for r in rows} == before.keys() | added, WHY
    assert all(r == before[r["billingSessionId"]] for r in rows if r["billingSessionId"] in before)
    by_id = {r["billingSessionId"]: r for r in rows}
    for case in listed:
        mine = [by_id[i] for i in case["addedBillingSessionIds"]]
        assert set(case["billingSessionIds"]) <= set(case["addedBillingSessionIds"]), WHY
        for row in mine:
            assert row["botId"] == sb.bot_ids[case["app"] - 1] == case["botId"], WHY
            assert row["billingSessionType"] == "Conversations", WHY
            assert row["conversationSessionId"] == case["conversationSessionId"], WHY
            assert (row["koreUserId"], row["channel"]) == (case["koreUserId"], case["channel"])
            day = datetime.fromtimestamp(span(row)[0], UTC).date().isoformat()
            assert day == case["day"], WHY


def test_the_usage_summary_bills_the_planted_sessions(planted: Any) -> None:
    sb, _, plain = planted
    rows = served(sb)
    for case in sb.planted_audit_cases():
        day = date.fromisoformat(case["day"])
        found = sum(
            r["botId"] == case["botId"]
            and r["billingSessionType"] == "Conversations"
            and datetime.fromtimestamp(span(r)[0], UTC).date() == day
            for r in rows
        )
        assert summary_conversations(sb, case["botId"], day) == found, WHY
        assert summary_conversations(plain, case["botId"], day) < found, WHY


def test_planted_cases_are_the_same_in_every_run_and_shown_by_the_command_line() -> None:
    now = datetime(2024, 6, 1, 9, 30, tzinfo=UTC)
    cases = drawn_cases(2, date(2024, 4, 1), 50)
    spec = [arg for case in cases for arg in ("--audit-case", case)]
    with (
        Sandbox(seed=SEED, apps=2, now=now, audit_cases=cases) as first,
        Sandbox(seed=SEED, apps=2, now=now + timedelta(days=3), audit_cases=cases) as later,
    ):
        listed = first.planted_audit_cases()
        assert listed == later.planted_audit_cases(), WHY
        assert first.info()["audit_cases"] == listed
        url = f"{first.url}/__sandbox/audit_cases"
        assert requests.get(url, timeout=5).json() == listed
        assert audit(served(first)) == expected_findings(listed), WHY
    args = ["--port", "0", "--seed", str(SEED), "--apps", "2", "--now", now.isoformat(), *spec]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tap_kore_billing.sandbox", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert '"audit_cases"' in line
    shown = json.loads(line)["audit_cases"]
    assert shown == listed, WHY


def test_a_case_on_an_app_added_later_shows_with_it() -> None:
    case = f"over_counted:3:{START.date() + timedelta(days=20)}"
    with Sandbox(seed=SEED, apps=3, hidden_apps=1, start=START, end=END, audit_cases=case) as sb:
        (listed,) = sb.planted_audit_cases()
        assert audit(served(sb)) == set(), WHY
        sb.reveal()
        assert audit(served(sb)) == expected_findings([listed]), WHY


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("too_long:1:2024-02-01", "must be one of longer_than_15_minutes"),
        ("over_counted:0:2024-02-01", "APP is the app's 1-based position"),
        ("over_counted:4:2024-02-01", "no app number 4 (the account has 3 apps)"),
        ("over_counted:1:2024-02-30", "day is out of range"),
        ("over_counted:1", "expected FINDING:APP:DAY"),
        ("over_counted:1:2024-05-01", "outside the data's range 2024-01-01T00:00:00Z"),
    ],
)
def test_a_case_that_cannot_be_planted_is_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Sandbox(apps=3, start=START, end=END, audit_cases=spec)
