"""Singer output: msgspec encoding, flushed at every STATE or SCHEMA instead of every RECORD."""

from __future__ import annotations

import sys
import typing as t
from datetime import datetime, timezone

from singer_sdk.contrib.msgspec import MsgSpecWriter, encoder
from singer_sdk.singerlib import Message, RecordMessage, SingerMessageType, StateMessage

from tap_kore_billing.core.errors import TapKoreBillingError


class DownstreamClosedError(TapKoreBillingError):
    """The target (or a pipe such as `| head`) stopped reading the tap's output."""


class BufferedMsgSpecWriter(MsgSpecWriter):
    """A flush per record is a system call per record; a flush per STATE keeps what matters.

    Every STATE leaves the process together with all records before it, so a target (or a
    killed run's log) never sees a bookmark ahead of its records. Records after the last STATE
    that die in the buffer belong to a window no bookmark covers: the next run fetches them.
    """

    def write_message(self, message: Message) -> None:
        self._write(self.format_message(message), flush=not isinstance(message, RecordMessage))

    def write_records(
        self, stream: str, records: list[dict[str, t.Any]], version: int | None = None
    ) -> None:
        """RECORD messages for a page of records, encoded in one call and written at once.

        The lines are the ones `write_message` would write for each record (same encoder, same
        keys in the same order); `time_extracted` is the moment the page is written.
        """
        envelope = RecordMessage(
            stream=stream, record={}, version=version, time_extracted=datetime.now(timezone.utc)
        ).to_dict()
        # Replacing "record" keeps the key where to_dict put it.
        self._write(encoder.encode_lines([{**envelope, "record": r} for r in records]))

    def write_state_line(self, line: bytes) -> None:
        """A STATE line (from `state_line`), flushed with every record written before it."""
        self._write(line, flush=True)

    def _write(self, data: bytes | bytearray, *, flush: bool = False) -> None:
        try:
            sys.stdout.buffer.write(data)
            if flush:
                sys.stdout.flush()
        except BrokenPipeError:
            raise DownstreamClosedError(
                "the downstream target stopped reading the tap's output (broken pipe); it "
                "crashed or was closed. Only the STATE messages it received are valid"
            ) from None


def state_line(state: t.Mapping[str, t.Any]) -> bytes:
    """The STATE message's line, as `MsgSpecWriter` writes `StateMessage(value=state)`."""
    return encoder.encode({"type": SingerMessageType.STATE, "value": state}) + b"\n"


class EncodedStateWriter:
    """Writes a STATE only when the state changed since the last one written, like the SDK's
    `StateWriter`, which compares the whole state with a deep copy of the last one and copies it
    again after each message: with hundreds of partitions, several ms a STATE (and one STATE per
    finished window). Here the state is encoded once, the line written is the snapshot kept,
    and the next state's line is compared with it: a later change to the live state cannot
    alter a snapshot of bytes. (Equal states with keys in another order would be written
    again: harmless, and the tap changes its state in place.)
    """

    def __init__(self, message_writer: object) -> None:
        self._message_writer = message_writer
        self._last_line: bytes | None = None

    def write_state(self, state: t.Mapping[str, t.Any]) -> None:
        line = state_line(state)
        if line == self._last_line:
            return
        if isinstance(self._message_writer, BufferedMsgSpecWriter):
            self._message_writer.write_state_line(line)
        else:
            t.cast("t.Any", self._message_writer).write_message(StateMessage(value=state))
        self._last_line = line
