"""Singer output: msgspec encoding, flushed at every STATE or SCHEMA instead of every RECORD."""

from __future__ import annotations

import sys

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import Message, RecordMessage

from tap_kore_billing.errors import TapKoreBillingError


class DownstreamClosedError(TapKoreBillingError):
    """The target (or a pipe such as `| head`) stopped reading the tap's output."""


class BufferedMsgSpecWriter(MsgSpecWriter):
    """A flush per record is a system call per record; a flush per STATE keeps what matters.

    Every STATE leaves the process together with all records before it, so a target (or a
    killed run's log) never sees a bookmark ahead of its records. Records after the last STATE
    that die in the buffer belong to a window no bookmark covers: the next run fetches them.
    """

    def write_message(self, message: Message) -> None:
        try:
            sys.stdout.buffer.write(self.format_message(message))
            if not isinstance(message, RecordMessage):
                sys.stdout.flush()
        except BrokenPipeError:
            raise DownstreamClosedError(
                "the downstream target stopped reading the tap's output (broken pipe); it "
                "crashed or was closed. Only the STATE messages it received are valid"
            ) from None
