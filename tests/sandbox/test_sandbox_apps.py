"""The emulator's app inventory (Get Bots, Get Linked Apps), its access knobs, every billing
session type, and live data that stays the same across restarts; all over real HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from tap_kore_billing.sandbox import Sandbox
from tap_kore_billing.sandbox.summary_report import TYPE_COUNTERS

UTC = timezone.utc
END = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
PLANTED = "fake-planted-secret-for-tests"
REPO = Path(__file__).resolve().parents[2]
BOT_KEYS = {
    "_id",
    "accountId",
    "purpose",
    "createdOn",
    "createdBy",
    "type",
    "defaultLanguage",
    "isDeflect",
    "resourceid",
    "status",
    "icon",
    "name",
    "description",
    "isLinkedTo",
    "containsPanelOrWidget",
    "jwtApps",
}
LINK_KEYS = {"configuredLinkedApps", "publishedLinkedApps", "uxoUBConfigured", "uxoUBPublished"}
CONVERSATION_KEYS = {
    "conversationSessionId",
    "conversationSessionStartDateTime",
    "conversationSessionEndDateTime",
}


def token(sb: Sandbox) -> str:
    now = int(time.time())
    claims = {"appId": sb.client_id, "sub": "test", "jti": uuid.uuid4().hex, "exp": now + 600}
    return jwt.encode(claims, sb.client_secret, algorithm="HS256")


def get(sb: Sandbox, path: str) -> requests.Response:
    return requests.get(f"{sb.url}{path}", headers={"auth": token(sb)}, timeout=10)


def bots(sb: Sandbox, query: str = "offset=0&limit=50") -> requests.Response:
    return get(sb, f"/api/public/bots?{query}")


def linked(sb: Sandbox, bot_id: str, query: str = "language=en") -> requests.Response:
    return get(sb, f"/api/1.1/public/bot/{bot_id}/universalbot/link?{query}")


def sessions(sb: Sandbox, url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        response = requests.post(
            url,
            json={**body, "skip": len(rows), "limit": 50},
            headers={"auth": token(sb)},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        rows.extend(response.json()["sessions"])
        if not response.json()["moreAvailable"]:
            return rows


def admin_rows(sb: Sandbox, low: datetime, high: datetime, **body: Any) -> list[dict[str, Any]]:
    window = {"fromDate": iso(low), "toDate": iso(high), **body}
    return sessions(sb, f"{sb.url}/api/public/bots/getBillingSessionsDetails", window)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture(scope="module")
def many() -> Iterator[Sandbox]:
    with Sandbox(
        seed=4, apps=120, sessions=240, end=END, links="1:2,1:3", planted_secret=PLANTED
    ) as sb:
        yield sb


# -- Get Bots ---------------------------------------------------------------------------------


def test_get_bots_pages_by_offset_cover_every_app_once(many: Sandbox) -> None:
    first = bots(many, "offset=0&limit=500")  # capped at 50, silently
    assert first.status_code == 200
    assert (first.json()["total"], len(first.json()["bots"])) == (120, 50)
    assert first.json()["availableMore"] is True
    seen: list[str] = []
    while True:
        page = bots(many, f"offset={len(seen)}&limit=50").json()
        assert page["total"] == 120
        seen.extend(bot["_id"] for bot in page["bots"])
        if not page["availableMore"]:
            break
    assert len(seen) == 120
    assert sorted(seen) == sorted(many.bot_ids)
    assert seen != many.bot_ids, "a hash order, not the apps' positions"
    assert bots(many, "offset=120").json() == {"total": 120, "availableMore": False, "bots": []}
    assert len(bots(many, "").json()["bots"]) == 50


def test_get_bots_documents_each_app(many: Sandbox) -> None:
    by_id = {bot["_id"]: bot for bot in bots(many).json()["bots"]}
    offset = 50
    while len(by_id) < 120:
        by_id |= {b["_id"]: b for b in bots(many, f"offset={offset}").json()["bots"]}
        offset += 50
    apps = many.apps()
    assert [app["name"] for app in apps[:4]] == [
        "Front Desk",
        "Claims Bot",
        "Billing Help",
        "Policy Assistant",
    ]
    assert apps[119]["name"] == "App 120"
    for app in apps:
        bot = by_id[app["botId"]]
        assert set(bot) == BOT_KEYS
        assert (bot["name"], bot["status"]) == (app["name"], app["status"])
        assert bot["purpose"] in {"customer", "employee"}
        assert bot["type"] == "default"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", bot["createdOn"])
        [jwt_app] = bot["jwtApps"]
        assert PLANTED in jwt_app["clientSecret"]
        assert jwt_app["clientId"].startswith("cs-")
    assert {app["status"] for app in apps[:3]} == {"published"}
    assert apps[3]["status"] not in {"published"}
    assert sum(by_id[a["botId"]]["defaultLanguage"] == "en" for a in apps) > 100
    front_desk = {"_id": apps[0]["botId"], "name": "Front Desk"}
    assert by_id[apps[1]["botId"]]["isLinkedTo"] == [front_desk]
    assert by_id[apps[2]["botId"]]["isLinkedTo"] == [front_desk]
    assert all(by_id[a["botId"]]["isLinkedTo"] == [] for a in [apps[0], *apps[3:]])


def test_app_attributes_come_from_the_seed_not_the_clock() -> None:
    fixed: dict[str, Any] = {"seed": 9, "apps": 5, "sessions": 5, "planted_secret": PLANTED}
    one = Sandbox(now="2024-03-01T00:00:00Z", **fixed)
    two = Sandbox(now="2024-09-01T00:00:00Z", **fixed)
    with one, two:
        assert bots(one).json() == bots(two).json()
        assert one.apps() == two.apps()


@pytest.mark.parametrize("query", ["offset=-1", "offset=abc", "limit=-5", "limit=1.5"])
def test_get_bots_refuses_bad_paging(many: Sandbox, query: str) -> None:
    response = bots(many, query)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 400


def test_get_bots_is_account_scope_next_to_the_admin_billing_path() -> None:
    with Sandbox(seed=2, apps=2, sessions=20, end=END) as sb:
        sb.reset_stats()
        assert bots(sb).status_code == 200
        assert sb.stats()["by_holder"] == {"account": 1}
        posted = requests.post(
            f"{sb.url}/api/public/bots", json={}, headers={"auth": token(sb)}, timeout=5
        )
        assert posted.status_code == 405
        billing = admin_rows(sb, END - timedelta(days=30), END)
        assert billing
        sb.configure(admin_enabled=False)
        refused = bots(sb)
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["msg"] == (
            "These credentials lack the Admin Console API scope"
        )
        assert requests.get(f"{sb.url}/api/public/bots", timeout=5).status_code == 401


# -- Get Linked Apps --------------------------------------------------------------------------


def test_linked_apps_published_and_draft() -> None:
    with Sandbox(
        seed=3, apps=4, sessions=20, end=END, links="1:2,1:3", draft_links="1:4,2:3"
    ) as sb:
        one, two, three, four = sb.bot_ids
        answer = linked(sb, one).json()
        assert answer["type"] == answer["appType"] == "unified"
        assert answer["isUXOUB"] is True
        assert [e["_id"] for e in answer["configuredLinkedApps"]] == [two, three, four]
        assert [e["_id"] for e in answer["publishedLinkedApps"]] == [two, three]
        assert answer["uxoUBConfigured"] == {"linkedApps": [two, three, four], "isUXOUB": True}
        assert answer["uxoUBPublished"] == {"linkedApps": [two, three], "isUXOUB": True}
        entry = answer["publishedLinkedApps"][0]
        assert (entry["name"], entry["appType"], entry["type"], entry["status"]) == (
            "Claims Bot",
            "unified",
            "default",
            1,
        )
        assert isinstance(entry["configuredVersion"], int)
        assert entry["publishedVersion"].isdigit()
        drafted = linked(sb, two).json()
        assert [e["_id"] for e in drafted["configuredLinkedApps"]] == [three]
        assert drafted["publishedLinkedApps"] == []
        nothing = linked(sb, four)
        assert nothing.status_code == 200
        assert not LINK_KEYS & nothing.json().keys()
        assert sb.links() == [
            {"parentBotId": one, "linkedBotId": two, "state": "published"},
            {"parentBotId": one, "linkedBotId": two, "state": "configured"},
            {"parentBotId": one, "linkedBotId": three, "state": "published"},
            {"parentBotId": one, "linkedBotId": three, "state": "configured"},
            {"parentBotId": one, "linkedBotId": four, "state": "configured"},
            {"parentBotId": two, "linkedBotId": three, "state": "configured"},
        ]
        sb.reset_stats()
        linked(sb, one)
        assert sb.stats()["by_holder"] == {one: 1}


def test_linked_apps_needs_language_and_a_known_app() -> None:
    with Sandbox(seed=3, apps=2, sessions=20, end=END) as sb:
        missing = linked(sb, sb.bot_ids[0], query="")
        assert missing.status_code == 400
        assert linked(sb, "st-not-an-app").status_code == 403
        # No routing unless asked for: most accounts link nothing.
        assert Sandbox(apps=2, sessions=0, end=END).links() == []
        with pytest.raises(ValueError, match="no app number 3"):
            Sandbox(apps=2, sessions=0, end=END, links="1:3")


def test_unreadable_app_is_refused_on_its_own_paths_only() -> None:
    with Sandbox(seed=5, apps=3, sessions=300, end=END, unreadable_apps="3") as sb:
        third = sb.bot_ids[2]
        message = f"App {third} is not accessible with these credentials"
        refused = linked(sb, third)
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["msg"] == message
        window = {"fromDate": iso(END - timedelta(days=60)), "toDate": iso(END)}
        own = requests.post(
            f"{sb.url}/api/public/bot/{third}/getBillingSessionsDetails",
            json=window,
            headers={"auth": token(sb)},
            timeout=5,
        )
        assert own.status_code == 403
        assert own.json()["errors"][0]["msg"] == message
        summary = requests.post(
            f"{sb.url}/api/public/bot/{third}/billingsessionsummary",
            json=window,
            headers={"auth": token(sb)},
            timeout=5,
        )
        assert summary.status_code == 403
        rows = admin_rows(sb, END - timedelta(days=60), END, botId=third)
        expected = [r for r in sb.expected(third) if r["start"] >= END - timedelta(days=60)]
        assert rows
        assert {r["billingSessionId"] for r in rows} == {r["billingSessionId"] for r in expected}
        assert third in {bot["_id"] for bot in bots(sb).json()["bots"]}
        assert linked(sb, sb.bot_ids[0]).status_code == 200


def test_hidden_apps_appear_only_after_reveal() -> None:
    with Sandbox(seed=6, apps=4, sessions=400, end=END, hidden_apps=1, links="1:2,1:4") as sb:
        one, two, _, four = sb.bot_ids
        low = END - timedelta(days=80)
        assert {bot["_id"] for bot in bots(sb).json()["bots"]} == set(sb.bot_ids[:3])
        assert bots(sb).json()["total"] == 3
        assert linked(sb, one).json()["uxoUBPublished"]["linkedApps"] == [two]
        assert {link["linkedBotId"] for link in sb.links()} == {two}
        assert [app["hidden"] for app in sb.apps()] == [False, False, False, True]
        assert [app["botId"] for app in sb.info()["apps"]] == [one, two, sb.bot_ids[2]]
        assert four not in {row["botId"] for row in admin_rows(sb, low, END)}

        revealed = requests.post(f"{sb.url}/__sandbox/reveal", timeout=5).json()["revealed"]
        assert revealed == len(sb.expected(four)) > 0
        page = bots(sb).json()
        assert page["total"] == 4
        by_id = {bot["_id"]: bot for bot in page["bots"]}
        assert by_id[four]["isLinkedTo"] == [{"_id": one, "name": "Front Desk"}]
        assert linked(sb, one).json()["uxoUBPublished"]["linkedApps"] == [two, four]
        assert {link["linkedBotId"] for link in sb.links()} == {two, four}
        assert not any(app["hidden"] for app in sb.apps())
        assert len(sb.info()["apps"]) == 4
        assert four in {row["botId"] for row in admin_rows(sb, low, END)}


def test_cli_flags_for_the_inventory() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = ["--port", "0", "--apps", "4", "--sessions", "40", "--links", "1:2,1:4"]
    args += ["--hidden-apps", "1", "--unreadable-apps", "2", "--planted-secret", PLANTED]
    args += ["--now", "2024-06-01T00:00:00Z", "--plain-session-fraction", "0.5"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tap_kore_billing.sandbox", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())
        assert [app["name"] for app in line["apps"]] == ["Front Desk", "Claims Bot", "Billing Help"]
        assert PLANTED not in json.dumps(line)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


# -- the sessions -----------------------------------------------------------------------------


def test_every_billing_session_type_with_the_default_knobs() -> None:
    with Sandbox() as sb:
        rows = admin_rows(sb, sb.data_end - timedelta(days=60), sb.data_end)
        types = {row["billingSessionType"] for row in rows}
        assert types == set(TYPE_COUNTERS)
        for row in rows:
            if row["billingSessionType"] == "Conversations":
                assert row.keys() >= CONVERSATION_KEYS
            else:
                assert not CONVERSATION_KEYS & row.keys()


def test_live_data_is_the_same_when_started_a_day_later() -> None:
    now = datetime(2024, 6, 1, 9, 30, tzinfo=UTC)
    early = Sandbox(seed=11, now=now)
    late = Sandbox(seed=11, now=now + timedelta(days=1, hours=3))
    with early, late:
        assert early.bot_ids == late.bot_ids
        assert early.data_end == now - timedelta(hours=1)

        def shown(sb: Sandbox) -> dict[str, tuple[Any, ...]]:
            return {
                r["billingSessionId"]: (r["start"], r["end"], r["botId"], r["channel"], r["raw"])
                for r in sb.expected()
            }

        before, after = shown(early), shown(late)
        both = before.keys() & after.keys()
        assert len(both) > 1800
        assert all(before[key] == after[key] for key in both)
        # Every session of the overlap is in both, and the later run shows the newer ones.
        overlap = [k for k, v in before.items() if v[0] >= late.data_start]
        assert set(overlap) <= both
        newer = [k for k, v in after.items() if v[1] > early.data_end]
        assert newer
        assert not set(newer) & before.keys()
        # The same, over HTTP, for a week both show.
        low = early.data_end - timedelta(days=7)
        served_early = {r["billingSessionId"]: r for r in admin_rows(early, low, early.data_end)}
        served_late = {r["billingSessionId"]: r for r in admin_rows(late, low, early.data_end)}
        finished = {k: r for k, r in served_late.items() if after[k][1] <= early.data_end}
        assert served_early == finished
        assert len(served_early) > 50
