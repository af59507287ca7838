"""Reading topics to their present end, from an offset or from a point in time.

Ends are read off Fetch responses (Tansu's in-memory engine answers ListOffsets for the latest
offset with a count of batches); points in time are looked up with ListOffsets by timestamp,
which Tansu answers right (tests/streams/test_republish.py depends on it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.errors import StreamsError
from streams.kafka_security import aiokafka_options
from streams.settings import Settings


async def end_offsets(settings: Settings, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """End offsets (high watermarks) of every partition of ``topics``.

    Read off Fetch responses, not ListOffsets: Tansu's in-memory engine answers ListOffsets with
    a count of batches, while its Fetch high watermark is right.
    """
    consumer = AIOKafkaConsumer(
        **aiokafka_options(settings),
        enable_auto_commit=False,
        max_partition_fetch_bytes=1024,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])]
        if not partitions:
            return {}
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        ends: dict[TopicPartition, int] = {}
        for _ in range(100):
            await consumer.getmany(timeout_ms=200, max_records=1)
            for tp in partitions:
                high = consumer.highwater(tp)
                if high is not None:
                    ends[tp] = high
                    consumer.pause(tp)
            if len(ends) == len(partitions):
                return ends
        missing = sorted(f"{tp.topic}/{tp.partition}" for tp in partitions if tp not in ends)
        raise StreamsError(f"the broker gave no high watermark for {', '.join(missing)}")
    finally:
        await consumer.stop()


async def read_topic(
    settings: Settings,
    topic: str,
    start: dict[TopicPartition, int] | None = None,
    timeout_s: float = 120.0,
    only: set[TopicPartition] | None = None,
) -> list[bytes]:
    """The values of ``topic`` from ``start`` (default: the beginning) to its present end; of the
    partitions in ``only``, if given."""
    start = start or {}
    todo = {
        tp: end
        for tp, end in (await end_offsets(settings, [topic])).items()
        if end > start.get(tp, 0) and (only is None or tp in only)
    }
    values: list[bytes] = []
    if not todo:
        return values
    ends = dict(todo)
    consumer = AIOKafkaConsumer(**aiokafka_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, start.get(tp, 0))
        deadline = time.monotonic() + timeout_s
        while todo:
            if time.monotonic() > deadline:
                raise StreamsError(f"could not read the topic {topic} to its end within {timeout_s:.0f} s")
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for record in records:
                    if record.offset < ends[tp] and record.value is not None:
                        values.append(record.value)
                    if record.offset + 1 >= ends[tp]:
                        todo.pop(tp, None)
    finally:
        await consumer.stop()
    return values


async def offsets_since(settings: Settings, topic: str, time_ms: int) -> dict[TopicPartition, int]:
    """Per partition of ``topic``, the first offset of a record stamped at or after ``time_ms``.

    A partition with no such record is left out: nothing there is that recent.
    """
    consumer = AIOKafkaConsumer(**aiokafka_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        found = await consumer.offsets_for_times({tp: time_ms for tp in partitions}) if partitions else {}
    finally:
        await consumer.stop()
    return {tp: at.offset for tp, at in found.items() if at is not None}
