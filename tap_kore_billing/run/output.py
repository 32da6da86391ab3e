"""Records written a page at a time, when singer-sdk's per-record steps would change nothing.

Per record, the SDK's loop deselects properties, conforms types, runs the stream maps, builds a
message object and encodes it alone: more time than the tap's own work. When none of those
steps would change a record (only the identity map, no flattening, every property selected, no
type conformance, no post-processing, no child streams, no record limit), a whole page goes out
in one `encode_lines` call instead, with the same lines in the same order, and the STATE
repeated every `STATE_MSG_FREQUENCY` records as the SDK does.
"""

from __future__ import annotations

import typing as t

from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_kore_billing.run.writer import BufferedMsgSpecWriter

if t.TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator


def records_pass_unchanged(stream: Stream) -> bool:
    """No stream map but the identity, no flattening, every property selected, no type
    conformance and no post-processing: records leave as the stream made them."""
    maps = stream.stream_maps
    return (
        type(stream).post_process is Stream.post_process
        and stream.TYPE_CONFORMANCE_LEVEL == TypeConformanceLevel.NONE
        and len(maps) == 1
        and type(maps[0]) is SameRecordTransform
        and not maps[0].flattening_enabled
        and maps[0].stream_alias == stream.name
        and all(stream.mask.values())
    )


def written_as_read(stream: Stream, writer: object, *, write_messages: bool) -> bool:
    """Whether the SDK's per-record steps would write each record exactly as read."""
    return (
        write_messages
        and stream.selected
        and stream.ABORT_AT_RECORD_COUNT is None
        and not stream.child_streams
        and isinstance(writer, BufferedMsgSpecWriter)
        and records_pass_unchanged(stream)
    )


def write_pages(
    stream: Stream,
    batches: Iterable[list[dict[str, t.Any]]],
    writer: BufferedMsgSpecWriter,
    version: int | None,
    emit_state: Callable[[], None],
) -> Generator[dict[str, t.Any], t.Any, None]:
    """The SDK's record loop for a stream without partitions handed to the SDK, over the
    stream's `batches` (a page at a time): RECORD lines, the record counter and timer, the
    STATE (`emit_state`, which sends it if it changed) every `every` records and at the end."""
    record_counter = stream.get_record_counter()
    timer = stream.get_sync_timer()
    manager = stream.state_manager
    with record_counter, timer:
        record_counter.with_context({})
        timer.with_context({})
        manager.write_starting_replication_value(
            context=None,
            replication_method=stream.replication_method,
            replication_key=stream.replication_key,
            config=dict(stream.config),
            compare_start_date_fn=stream.compare_start_date,
        )
        written = 0
        every = stream.STATE_MSG_FREQUENCY
        for batch in batches:
            for part in split_at_multiples(batch, written, every):
                writer.write_records(stream.name, part, version)
                manager.is_flushed = False
                record_counter.increment(len(part))
                written += len(part)
                if written % every == 0:
                    emit_state()
                yield from part
        if manager.get_state_partition_context(None) is None:
            manager.finalize_state(stream.get_context_state(None))
    manager.finalize_state(stream.stream_state)
    emit_state()


def split_at_multiples(
    batch: list[dict[str, t.Any]], before: int, every: int
) -> Iterator[list[dict[str, t.Any]]]:
    """`batch` in parts that end where the running count (`before` + what was yielded)
    reaches a multiple of `every`."""
    start = 0
    while start < len(batch):
        end = start + every - (before + start) % every
        yield batch[start:end]
        start = end
