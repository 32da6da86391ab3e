"""STATE messages: written when the state changed since the last one written, never when it did
not, the same line the SDK's writer writes, and a snapshot that later changes to the live state
cannot alter."""

from __future__ import annotations

import json
import typing as t

import pytest
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import StateMessage

from tap_kore_billing.run.writer import BufferedMsgSpecWriter, EncodedStateWriter, state_line


class Stdout:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def states(self) -> list[dict[str, t.Any]]:
        lines = self.capsys.readouterr().out.splitlines()
        return [json.loads(line)["value"] for line in lines]


@pytest.fixture
def stdout(capsys: pytest.CaptureFixture[str]) -> Stdout:
    return Stdout(capsys)


def partitioned(*bookmarks: str) -> dict[str, t.Any]:
    return {
        "bookmarks": {
            "billing_sessions": {
                "partitions": [
                    {"context": {"botId": f"st-{i}"}, "replication_key_value": value}
                    for i, value in enumerate(bookmarks)
                ]
            }
        }
    }


def test_a_changed_bookmark_is_written_an_unchanged_one_is_not(stdout: Stdout):
    writer = EncodedStateWriter(BufferedMsgSpecWriter())
    state = partitioned("2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00")
    writer.write_state(state)
    writer.write_state(state)  # unchanged: nothing
    writer.write_state(partitioned("2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00"))
    state["bookmarks"]["billing_sessions"]["partitions"][1]["replication_key_value"] = "2024-02"
    writer.write_state(state)  # changed in place: written
    writer.write_state(state)
    assert [s["bookmarks"]["billing_sessions"]["partitions"][1] for s in stdout.states()] == [
        {"context": {"botId": "st-1"}, "replication_key_value": "2024-01-02T00:00:00+00:00"},
        {"context": {"botId": "st-1"}, "replication_key_value": "2024-02"},
    ]


def test_a_later_change_to_the_live_state_does_not_alter_the_snapshot(stdout: Stdout):
    writer = EncodedStateWriter(BufferedMsgSpecWriter())
    state = partitioned("a")
    writer.write_state(state)
    state["bookmarks"]["billing_sessions"]["partitions"][0]["replication_key_value"] = "b"
    state["bookmarks"]["billing_sessions"]["partitions"][0]["replication_key_value"] = "a"
    writer.write_state(state)  # back to what was written: nothing new
    state["bookmarks"]["billing_sessions"]["partitions"].append({"context": {"botId": "x"}})
    writer.write_state(state)
    assert [len(s["bookmarks"]["billing_sessions"]["partitions"]) for s in stdout.states()] == [
        1,
        2,
    ]


def test_the_first_state_is_written_even_when_empty(stdout: Stdout):
    writer = EncodedStateWriter(BufferedMsgSpecWriter())
    writer.write_state({})
    writer.write_state({})
    assert stdout.states() == [{}]


def test_the_line_is_the_one_the_sdks_writer_writes():
    state = partitioned("2024-01-01T00:00:00+00:00", "é")
    state["bookmarks"]["billing_sessions"]["progress_markers"] = {"n": 3, "x": None}
    expected = bytes(MsgSpecWriter().format_message(StateMessage(value=state)))
    assert state_line(state) == expected


def test_another_message_writer_gets_state_messages(stdout: Stdout):
    class Collecting:
        def __init__(self) -> None:
            self.messages: list[StateMessage] = []

        def write_message(self, message: StateMessage) -> None:
            self.messages.append(message)

    collecting = Collecting()
    writer = EncodedStateWriter(collecting)
    writer.write_state(partitioned("a"))
    writer.write_state(partitioned("a"))
    writer.write_state(partitioned("b"))
    assert [
        m.value["bookmarks"]["billing_sessions"]["partitions"][0] for m in collecting.messages
    ] == [
        {"context": {"botId": "st-0"}, "replication_key_value": "a"},
        {"context": {"botId": "st-0"}, "replication_key_value": "b"},
    ]
