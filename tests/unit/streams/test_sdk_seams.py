"""The private singer-sdk names the tap relies on (listed in `streams/base.py`), each checked
against a plain SDK tap: when an SDK release changes one, this file fails and says which, so an
upgrade is a test run, not an investigation."""

from __future__ import annotations

import inspect
import json
import typing as t
from pathlib import Path

import pytest
from singer_sdk import Stream, Tap
from singer_sdk import typing as th

import tap_kore_billing
from tap_kore_billing.run.writer import EncodedStateWriter
from tap_kore_billing.streams.base import KoreBillingStream
from tap_kore_billing.tap import TapKoreBilling

ROWS = [{"id": i, "updated": f"2024-01-0{i}T00:00:00Z"} for i in (3, 1, 2)]


class Plain(Stream):
    name = "plain"
    schema = th.PropertiesList(
        th.Property("id", th.IntegerType), th.Property("updated", th.DateTimeType)
    ).to_dict()
    replication_key: str | None = "updated"
    increments: t.ClassVar[list[tuple[dict, t.Mapping[str, t.Any] | None]]] = []

    def get_records(self, context: t.Mapping[str, t.Any] | None) -> t.Iterable[dict]:
        yield from (dict(row) for row in ROWS)


class Counting(Plain):
    def _increment_stream_state(
        self, latest_record: dict, *, context: t.Mapping[str, t.Any] | None = None
    ) -> None:
        self.increments.append((latest_record, context))


class FullTable(Plain):
    replication_key = None


def tap_with(stream_class: type[Stream], **config: t.Any) -> Tap:
    class PlainTap(Tap):
        name = "tap-plain"
        config_jsonschema = th.PropertiesList().to_dict()

        def discover_streams(self) -> list[Stream]:
            return [stream_class(self)]

    return PlainTap(config=config, parse_env_config=False)


def messages(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_the_tap_relies_on_no_private_names_but_the_listed_ones():
    """Every `_name` of singer-sdk in the tap's code is one of the seams listed in base.py."""
    allowed = {
        "_sync_records",
        "_increment_stream_state",
        "_write_state_message",
        "_stream_version",
    }
    sdk_private = {
        name
        for cls in (Stream, Tap)
        for name in dir(cls)
        if name.startswith("_") and not name.startswith("__")
    }
    used: dict[str, set[str]] = {}
    for path in Path(inspect.getfile(tap_kore_billing)).parent.rglob("*.py"):
        if "sandbox" in path.parts:
            continue  # the emulator does not use the SDK
        text = path.read_text()
        for name in sdk_private:
            if f".{name}" in text or f"def {name}(" in text:
                used.setdefault(name, set()).add(path.name)
        for line in text.splitlines():
            if line.startswith(("from singer_sdk", "import singer_sdk")):
                assert "._" not in line, f"{path.name} imports from a private SDK module: {line}"
    assert set(used) <= allowed, {name: used[name] for name in set(used) - allowed}
    for name, files in used.items():
        assert files == {"base.py"}, f"{name} is used outside streams/base.py: {files}"
    # An attribute set in Tap.__init__ (not in dir(Tap)): set in tap.py alone, listed in base.py.
    package = Path(inspect.getfile(tap_kore_billing)).parent
    setting = {
        path.name
        for path in package.rglob("*.py")
        if "sandbox" not in path.parts and "self._state_writer =" in path.read_text()
    }
    assert setting == {"tap.py"}, setting
    assert "`Tap._state_writer`" in (package / "streams" / "base.py").read_text()


def test_every_state_message_goes_through_the_taps_state_writer(capsys):
    """The SDK keeps its StateWriter in `Tap._state_writer`, which the tap replaces: the
    `state_writer` property, the streams' STATE messages and `sync_all` must all use it."""

    class Recording:
        def __init__(self) -> None:
            self.states: list[str] = []

        def write_state(self, state: dict) -> None:
            self.states.append(json.dumps(state, sort_keys=True))

    tap = tap_with(Plain)
    recording = Recording()
    tap._state_writer = recording  # type: ignore[assignment]
    assert tap.state_writer is recording
    tap.load_state({"bookmarks": {"plain": {"replication_key_value": "2024-01-01"}}})
    tap.sync_all()
    assert len(recording.states) >= 2, recording.states  # sync_all's first, the stream's
    assert "STATE" not in capsys.readouterr().out  # none went around it


def test_the_tap_writes_its_states_through_the_encoded_state_writer():
    tap = TapKoreBilling(config=None, validate_config=False)
    assert isinstance(tap.state_writer, EncodedStateWriter)


def test_sync_calls_sync_records_with_the_arguments_the_tap_overrides():
    parameters = inspect.signature(Stream._sync_records).parameters
    assert list(parameters) == ["self", "context", "write_messages"]
    assert parameters["write_messages"].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.isgeneratorfunction(Stream._sync_records)
    assert set(inspect.signature(KoreBillingStream._sync_records).parameters) == set(parameters)


def test_the_sdk_bookmarks_by_record_through_increment_stream_state(capsys):
    """The tap overrides it to a no-op: the SDK must call it once per record, and nothing
    else may move the bookmark."""
    Counting.increments.clear()
    tap_with(Counting).sync_all()
    assert [(record["id"], context) for record, context in Counting.increments] == [
        (3, None),
        (1, None),
        (2, None),
    ]
    states = [m["value"] for m in messages(capsys.readouterr().out) if m["type"] == "STATE"]
    assert "replication_key_value" not in json.dumps(states), states


def test_write_state_message_sends_the_pending_state_once(capsys):
    tap = tap_with(Plain)
    stream = tap.streams["plain"]
    stream.state_manager.get_context_state(None)["replication_key_value"] = "x"
    stream.state_manager.is_flushed = False
    stream._write_state_message()
    stream._write_state_message()  # nothing pending any more
    states = [m for m in messages(capsys.readouterr().out) if m["type"] == "STATE"]
    assert len(states) == 1
    assert states[0]["value"]["bookmarks"]["plain"]["replication_key_value"] == "x"
    assert stream.state_manager.is_flushed is True


def test_stream_version_is_the_version_of_full_table_records(capsys):
    tap = tap_with(FullTable, emit_activate_version_messages=True)
    tap.sync_all()
    stream = tap.streams["plain"]
    out = messages(capsys.readouterr().out)
    activate = [m for m in out if m["type"] == "ACTIVATE_VERSION"]
    records = [m for m in out if m["type"] == "RECORD"]
    assert activate, "no ACTIVATE_VERSION in FULL_TABLE mode"
    assert stream._stream_version == activate[0]["version"]
    assert {m.get("version") for m in records} == {stream._stream_version}


def test_an_incremental_stream_has_no_stream_version(capsys):
    tap = tap_with(Plain)
    tap.sync_all()
    capsys.readouterr()
    assert tap.streams["plain"]._stream_version is None


@pytest.mark.parametrize(
    ("method", "keywords"),
    [
        (
            "write_starting_replication_value",
            {"context", "replication_method", "replication_key", "config", "compare_start_date_fn"},
        ),
        ("finalize_state", {"state"}),
        ("get_state_partition_context", {"context"}),
        ("get_context_state", {"context"}),
    ],
)
def test_the_state_manager_methods_the_page_writer_calls(method, keywords):
    manager = tap_with(Plain).streams["plain"].state_manager
    assert keywords <= set(inspect.signature(getattr(manager, method)).parameters)
    assert manager.is_flushed in (True, False)
