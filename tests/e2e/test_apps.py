"""The apps and app_links streams, linked apps read with their Parent, and the secrets Get Bots
sends, against the emulator over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import START, dt, run_tap, sandbox_config

from tap_kore_billing.sandbox import Sandbox

END = dt("2024-04-01T00:00:00Z")
LINKS = "1:2,1:3"


def family(**knobs: Any) -> Sandbox:
    """Front Desk (app 1) routing to Claims Bot (2) and Billing Help (3), and one app apart."""
    options: dict[str, Any] = {
        "seed": 19,
        "apps": 4,
        "sessions": 800,
        "start": dt(START),
        "end": END,
        "links": LINKS,
        "draft_links": "1:4",
        **knobs,
    }
    return Sandbox(**options)


def app_ids(sb: Sandbox, *indexes: int) -> list[str]:
    by_index = {app["index"]: app["botId"] for app in sb.apps()}
    return [by_index[i] for i in indexes]


def test_admin_scope_lists_every_app_with_its_name_and_links(tmp_path):
    with family(apps=120) as sb:
        run = run_tap(tmp_path, sandbox_config(sb, api_scope="admin", bot_ids=[]))
        expected_links = sb.links()

    assert run.exit_code == 0, run.stderr
    apps = {r["botId"]: r for r in run.stream_records("apps")}
    # 120 apps take three pages of at most 50.
    assert {bot: r["name"] for bot, r in apps.items()} == {a["botId"]: a["name"] for a in sb.apps()}
    assert {r["source"] for r in apps.values()} == {"get_bots"}
    # Every app was read through the account-wide path.
    assert {r["billingReadable"] for r in apps.values()} == {True}
    front, claims = app_ids(sb, 1, 2)
    assert apps[claims]["isLinkedTo"] == [front]
    links = {
        (r["parentBotId"], r["linkedBotId"], r["state"]) for r in run.stream_records("app_links")
    }
    assert links == {(x["parentBotId"], x["linkedBotId"], x["state"]) for x in expected_links}


def test_bot_scope_reads_the_published_linked_apps_of_each_listed_app(tmp_path):
    with family() as sb:
        front, claims, billing, draft_only = app_ids(sb, 1, 2, 3, 4)
        run = run_tap(tmp_path, sandbox_config(sb, bot_ids=[front]))
        family_sessions = {
            s["billingSessionId"] for bot in (front, claims, billing) for s in sb.expected(bot)
        }

    assert run.exit_code == 0, run.stderr
    schemas = [m["stream"] for m in run.messages if m["type"] == "SCHEMA"]
    # The inventory streams sync last, after the billing streams they report on.
    assert schemas == ["billing_sessions", "billing_usage_summary", "apps", "app_links"]
    # The draft-only link (app 4) is not read: only published routing is billed.
    assert set(run.ids) == family_sessions
    assert len(run.ids) == len(family_sessions)
    assert set(run.bookmarks()) == {f"botId={b}" for b in (front, claims, billing)}
    summary_apps = {r["botId"] for r in run.summary}
    assert summary_apps == {front, claims, billing}
    apps = {r["botId"]: r for r in run.stream_records("apps")}
    assert apps[front]["source"] == "bot_ids"
    assert apps[claims]["source"] == "linked_apps"
    assert apps[claims]["name"] == "Claims Bot"
    assert apps[claims]["isLinkedTo"] == [front]
    assert apps[draft_only]["billingReadable"] is None  # a draft link: not read
    links = {(r["linkedBotId"], r["state"]) for r in run.stream_records("app_links")}
    assert links == {
        (claims, "published"),
        (billing, "published"),
        (claims, "configured"),
        (billing, "configured"),
        (draft_only, "configured"),
    }


def test_include_linked_apps_null_is_the_default_on(tmp_path):
    with family() as sb:
        front, claims, billing = app_ids(sb, 1, 2, 3)
        run = run_tap(tmp_path, sandbox_config(sb, bot_ids=[front], include_linked_apps=None))

    assert run.exit_code == 0, run.stderr
    assert {r["botId"] for r in run.records} == {front, claims, billing}


@pytest.mark.parametrize(
    ("offset_counts", "warning"),
    [
        ("pages", "the account has 120 apps (its total), the pages held 50 distinct apps"),
        ("ignored", "sent no app not seen before while availableMore is true"),
    ],
)
def test_get_bots_paging_that_does_not_advance_is_named(tmp_path, offset_counts, warning):
    # Whether offset counts rows or pages is not documented; a server may also ignore it.
    with family(apps=120, bots_offset=offset_counts) as sb:
        config = sandbox_config(sb, api_scope="admin", bot_ids=[])
        run = run_tap(tmp_path, config, streams=("apps",))

    assert run.exit_code == 0, run.stderr
    assert len(run.stream_records("apps")) == 50
    [line] = [line for line in run.stderr.splitlines() if warning in line]
    assert "WARNING" in line


def test_include_linked_apps_off_reads_only_the_listed_apps(tmp_path):
    with family() as sb:
        (front,) = app_ids(sb, 1)
        run = run_tap(tmp_path, sandbox_config(sb, bot_ids=[front], include_linked_apps=False))
        expected = {s["billingSessionId"] for s in sb.expected(front)}

    assert run.exit_code == 0, run.stderr
    assert set(run.ids) == expected
    assert set(run.bookmarks()) == {f"botId={front}"}


def test_a_linked_app_the_credentials_cannot_read_is_named_and_skipped(tmp_path):
    with family(unreadable_apps="3") as sb:
        front, claims, billing = app_ids(sb, 1, 2, 3)
        run = run_tap(tmp_path, sandbox_config(sb, bot_ids=[front]))
        readable = {s["billingSessionId"] for bot in (front, claims) for s in sb.expected(bot)}

    assert run.exit_code == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line and billing in line]
    assert len(warnings) == 1, run.stderr
    assert "Billing Help" in warnings[0]
    assert "403" in warnings[0]
    assert set(run.ids) == readable
    # No bookmark for the app that was not read: a later run with access starts at start_date.
    assert set(run.bookmarks()) == {f"botId={front}", f"botId={claims}"}
    assert set(run.bookmarks("billing_usage_summary")) == {f"botId={front}", f"botId={claims}"}
    readable_flags = {r["botId"]: r["billingReadable"] for r in run.stream_records("apps")}
    assert readable_flags[billing] is False
    assert readable_flags[front] is readable_flags[claims] is True
    assert "Traceback" not in run.stderr


def test_a_listed_app_the_credentials_cannot_read_fails_the_run(tmp_path):
    with family(unreadable_apps="3") as sb:
        (billing,) = app_ids(sb, 3)
        run = run_tap(tmp_path, sandbox_config(sb, bot_ids=[billing]))

    assert run.exit_code != 0
    assert "403" in run.stderr
    assert billing in run.stderr
    assert "Traceback" not in run.stderr


def test_an_app_linked_later_is_read_from_start_date_on_the_next_run(tmp_path):
    with family(links="1:2,1:4", hidden_apps=1) as sb:
        front, claims, added = app_ids(sb, 1, 2, 4)
        first = run_tap(tmp_path, sandbox_config(sb, bot_ids=[front]))
        assert first.exit_code == 0, first.stderr
        assert added not in {r["botId"] for r in first.records}
        sb.reveal()
        second = run_tap(tmp_path, sandbox_config(sb, bot_ids=[front]), state=first.final_state)
        added_sessions = {s["billingSessionId"] for s in sb.expected(added)}

    assert second.exit_code == 0, second.stderr
    assert added_sessions
    assert added_sessions <= set(second.ids)
    assert f"botId={added}" in second.bookmarks()
    assert claims in {r["linkedBotId"] for r in second.stream_records("app_links")}


def _every_byte(run_dir: Path, *outputs: str) -> str:
    files = [p.read_text(errors="replace") for p in run_dir.rglob("*") if p.is_file()]
    return "\n".join([*outputs, *files])


def test_no_client_secret_from_get_bots_leaves_the_tap(tmp_path, monkeypatch):
    planted = "PLANTED-app-secret-must-never-leave-the-tap"
    batch_dir = tmp_path / "batches"
    with family(apps=60, planted_secret=planted) as sb:
        base = sandbox_config(sb, api_scope="admin", bot_ids=[])
        with monkeypatch.context() as debug:
            debug.setenv("TEST_TAP_LOG_LEVEL", "DEBUG")
            plain = run_tap(tmp_path, base)
        # Stream maps see the record whole: a map that copies every field into one column.
        mapped = run_tap(
            tmp_path,
            {**base, "stream_maps": {"apps": {"everything": "str(record)"}}},
        )
        batched = run_tap(
            tmp_path,
            {
                **base,
                "batch_config": {
                    "encoding": {"format": "jsonl"},
                    "storage": {"root": batch_dir.as_uri(), "prefix": "kore-"},
                },
            },
        )
        # Bodies cut off in transit, until every try is spent: the error names the answer.
        sb.configure(truncate_rate=1.0)
        broken = run_tap(tmp_path, {**base, "retry_attempts": 2}, streams=("apps",))

    for run in (plain, mapped, batched):
        assert run.exit_code == 0, run.stderr
    assert broken.exit_code != 0
    assert "Get Bots" in broken.stderr
    assert len(plain.stream_records("apps")) == 60
    assert any("everything" in r for r in mapped.stream_records("apps"))
    assert list(batch_dir.rglob("*"))
    everything = _every_byte(
        tmp_path, *(r.stdout + r.stderr for r in (plain, mapped, batched, broken))
    )
    assert planted not in everything
    assert "clientSecret" not in everything
    assert "jwtApps" not in everything
    assert json.dumps(planted)[1:-1] not in everything


def test_links_that_get_no_answer_fail_the_run_before_any_bookmark(tmp_path):
    with family(error_rate=1.0) as sb:
        (front,) = app_ids(sb, 1)
        run = run_tap(tmp_path, sandbox_config(sb, bot_ids=[front], retry_attempts=2))

    assert run.exit_code == 1
    last = run.stderr.strip().splitlines()[-1]
    assert f"Get Linked Apps of app {front}" in last
    assert "after 2 tries" in last
    assert "Traceback" not in run.stderr
    assert not any("partitions" in s["bookmarks"].get("billing_sessions", {}) for s in run.states)
