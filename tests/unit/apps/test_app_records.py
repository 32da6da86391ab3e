"""Get Bots and Get Linked Apps answers turned into records: only named fields, every
undocumented shape read."""

from __future__ import annotations

import logging

from tap_kore_billing.apps.records import app_from_bot, links_from_answer

LOG = logging.getLogger("test")
BOT = {
    "_id": "st-1",
    "accountId": "a-1",
    "name": "Claims Bot",
    "status": "published",
    "purpose": "customer",
    "type": "default",
    "defaultLanguage": "en",
    "createdOn": "2024-09-10T13:01:14.625Z",
    "isLinkedTo": [{"_id": "st-p", "name": "Front Desk"}, "st-q", {"x": 1}],
    "jwtApps": [{"clientId": "cs-1", "clientSecret": "s3cret-value"}],
    "futureField": {"clientSecret": "another"},
}


def test_a_bot_record_holds_the_named_fields_and_no_credential():
    record = app_from_bot(BOT)
    assert record is not None
    assert record["botId"] == "st-1"
    assert record["name"] == "Claims Bot"
    assert record["createdOn"] == "2024-09-10T13:01:14.625000+00:00"
    assert record["isLinkedTo"] == ["st-p", "st-q"]
    assert record["source"] == "get_bots"
    assert "s3cret-value" not in repr(record)
    assert "another" not in repr(record)


def test_a_bot_without_an_id_is_no_record_and_bad_dates_are_null():
    assert app_from_bot({"name": "x"}) is None
    record = app_from_bot({"_id": "st-2", "createdOn": "yesterday", "isLinkedTo": None})
    assert record is not None
    assert record["createdOn"] is None
    assert record["isLinkedTo"] is None


def test_links_read_both_lists_and_the_versions_as_integers():
    entry = {
        "_id": "st-c",
        "name": "Claims Bot",
        "appType": "unified",
        "type": "default",
        "status": 1,
        "configuredVersion": 1765345178,
        "publishedVersion": "1744860968",
    }
    answer = {
        "configuredLinkedApps": [entry, {"_id": "st-d", "name": "Draft"}],
        "publishedLinkedApps": [entry],
        "uxoUBPublished": {"linkedApps": ["st-c", "st-only-in-ids"]},
    }
    links = {(r["linkedBotId"], r["state"]): r for r in links_from_answer("st-p", answer, LOG)}
    assert set(links) == {
        ("st-c", "published"),
        ("st-only-in-ids", "published"),
        ("st-c", "configured"),
        ("st-d", "configured"),
    }
    claims = links[("st-c", "published")]
    assert claims["parentBotId"] == "st-p"
    assert claims["publishedVersion"] == 1744860968
    assert claims["configuredVersion"] == 1765345178
    assert links[("st-only-in-ids", "published")]["name"] is None


def test_an_app_that_links_nothing_may_leave_the_lists_out(caplog):
    assert links_from_answer("st-p", {"type": "unified"}, LOG) == []
    assert links_from_answer("st-p", {"publishedLinkedApps": None}, LOG) == []
    odd = {"publishedLinkedApps": [{"_id": "st-c", "publishedVersion": "v2"}]}
    with caplog.at_level(logging.WARNING):
        (link,) = links_from_answer("st-p", odd, LOG)
    assert link["publishedVersion"] is None
    assert "publishedVersion" in caplog.text


def test_a_linked_app_given_as_an_id_is_kept_and_one_without_an_id_is_named(caplog):
    answer = {"publishedLinkedApps": ["st-x", {"name": "No ID"}]}
    with caplog.at_level(logging.WARNING):
        links = links_from_answer("st-p", answer, LOG)
    assert [(r["linkedBotId"], r["state"], r["name"]) for r in links] == [
        ("st-x", "published", None)
    ]
    assert "without an ID" in caplog.text
