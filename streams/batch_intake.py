"""The detector's topic taken straight from Faust's consumer, in batches, without events or streams.

Faust hands every fetched message to its conductor, which decodes it into an event, puts the event
on each subscribing agent's queue, and the agent's stream takes it off again, one by one. For a
topic of raw bytes read a thousand at a time that path is nearly all of Faust's cost: its fetch
loop with a callback that only counts reads as fast as aiokafka alone, ten times the bare agent
(benchmarks/faust_fetch_counter.py, BENCHMARKS.md).

``BatchIntake`` wraps the consumer's callback. Messages of its topic go into one buffer, from which
the detector takes whole batches; messages of every other topic go on to Faust's conductor as
before. The worker's eager consumer (streams/eager_consumer.py) hands its topic's messages to
``offer`` instead, a partition's fetched records at a time, without a callback per message. What
Faust's path does for a message and matters here is done here too:

- a batch is in hand from when the detector takes it until it is acknowledged, once applied, so
  that offsets are committed only for applied events. Its offsets are acknowledged with Faust's
  bookkeeping (``Consumer.ack``'s), a partition at a time rather than a message at a time, and a
  rebalance waits for the batch in hand (``Consumer.wait_empty``) as it waits for Faust's own
  messages (``_InHand``);
- the callback waits while Faust suspends the flow for a rebalance, and the buffer is one of the
  queues Faust's flow control clears, when the flow is suspended and again when it resumes:
  buffered messages are dropped unprocessed, and read again from the committed offsets (Faust
  seeks to them on every assignment) by whichever worker then holds their partitions;
- a full buffer makes the fetch loop wait: memory stays bounded when the detector falls behind.

What the intake buffers are the fetched records as they come: aiokafka's from the eager consumer,
Faust's messages from Faust's own consumer's callback; the detector reads their topic, partition,
offset and value. Faust's fetch loop builds a message of each record, tracks it as unacknowledged
and tells its sensors, and its acknowledgement is a call per message: 6% of a worker's samples
(py-spy, benchmarks/worker_profile.py). Without them the intake probe (benchmarks/
faust_intake_counter.py) spent 5.1 to 6.3 us an event where it had spent 10.0 to 12.2, and the
worker 51 to 54 where it had spent 56 to 60 (ad hoc: three rounds, each tree in turn, on one
broker and stream; issue 5's note). Faust's sensors therefore do not count the intake's records;
the worker's own metrics do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

Callback = Callable[[Any], Awaitable[None]]

# The fetch loop may run this many batches ahead of the detector and no further: a batch staged
# and one applied leave room to fetch the next ones, and memory stays bounded when the detector falls behind.
BUFFERED_BATCHES = 4


class _InHand:
    """The intake's batches taken and not yet acknowledged, as one entry of Faust's unacknowledged
    messages (``Consumer._unacked_messages``, a weak set), there while a batch is in hand.

    ``Consumer.wait_empty`` (a rebalance, a stop) commits and waits until that set holds nothing
    that is not ``acked``: the batches in hand are waited for as each message Faust tracks is.
    """

    __slots__ = ("__weakref__", "count")

    def __init__(self) -> None:
        self.count = 0

    @property
    def acked(self) -> bool:
        return self.count == 0

    @property
    def refcount(self) -> int:  # what wait_empty logs of each entry it is still waiting for
        return self.count

    def __repr__(self) -> str:
        return f"<the batch intake: {self.count} records taken, not yet acknowledged>"


def acknowledge_offsets(consumer: Any, topic: str, records: Sequence[Any]) -> None:
    """Faust's ``Consumer.ack`` (faust-streaming 0.15) for each of ``records`` of ``topic``, a
    partition at a time: each offset not yet acknowledged, and not below the partition's committed
    offset, joins the partition's acknowledged offsets, which the next commit reads.
    tests/streams/test_batch_intake.py fails on a Faust whose ``ack`` differs."""
    if consumer.app.topics.acks_enabled_for(topic):
        by_partition: dict[int, list[int]] = {}
        for record in records:
            by_partition.setdefault(record.partition, []).append(record.offset)
        with ack_lock:
            for partition, offsets in by_partition.items():
                tp = TP(topic, partition)
                committed = consumer._committed_offset[tp]
                index = consumer._acked_index[tp]
                fresh = [
                    offset
                    for offset in dict.fromkeys(offsets)
                    if (committed is None or offset >= committed) and offset not in index
                ]
                index.update(fresh)
                consumer._acked[tp].extend(fresh)
                consumer._n_acked += len(fresh)
    notify(consumer._waiting_for_ack)


class BatchIntake:
    """One topic's messages, from Faust's fetch loop to the detector in batches."""

    def __init__(self, app: Any, topic: str, batch_size: int, max_buffered: int) -> None:
        if max_buffered < batch_size:
            raise ValueError("max_buffered must hold at least one batch")
        self.app, self.topic, self.batch_size, self.max_buffered = app, topic, batch_size, max_buffered
        self._buffer: list[Any] = []
        self._arrived = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._passed_on: Callback | None = None
        self._in_hand = _InHand()

    @classmethod
    def for_worker(cls, app: Any, topic: str, batch_size: int) -> BatchIntake:
        """The intake as the worker sizes it: room for ``BUFFERED_BATCHES`` batches."""
        return cls(app, topic, batch_size, BUFFERED_BATCHES * batch_size)

    def install(self) -> None:
        """Put ``on_message`` in front of the consumer's callback, and give the eager consumer
        (streams/eager_consumer.py) ``offer`` for this topic's messages in bulk; before the fetch
        loop starts, which reads both once."""
        consumer = self.app.consumer
        self._passed_on = consumer.callback
        consumer.callback = self.on_message
        if hasattr(consumer, "batch_taker"):
            consumer.batch_taker = self
        self.app.flow_control.manage_queue(self)

    @property
    def buffered(self) -> int:
        """Records fetched and not yet taken."""
        return len(self._buffer)

    async def offer(self, messages: list[Any]) -> None:
        """This topic's records of one partition, in order: a fetch's (the eager consumer) or one
        (``on_message``). One wait for the flow and for room per part of them that fits."""
        start = 0
        while start < len(messages):
            await self.app.flow_control.acquire()
            while len(self._buffer) >= self.max_buffered:
                self._space.clear()
                await self._space.wait()
            fits = messages[start : start + self.max_buffered - len(self._buffer)]
            was = len(self._buffer)
            self._buffer.extend(fits)
            start += len(fits)
            # Wake the taker for a first message (its wait for a full batch starts) and a full batch only.
            if was == 0 or len(self._buffer) >= self.batch_size:
                self._arrived.set()

    async def on_message(self, message: Any) -> None:
        if message.topic != self.topic:
            assert self._passed_on is not None  # noqa: S101 - install() set it
            await self._passed_on(message)
            return
        await self.offer([message])

    def clear(self) -> None:
        """Called by Faust's flow control in a rebalance: buffered messages are left unread."""
        self._buffer.clear()
        self._space.set()

    async def take(self, within_s: float) -> list[Any]:
        """The next batch: ``batch_size`` messages, or fewer once ``within_s`` has passed since the
        first of them was there to take."""
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while len(self._buffer) < self.batch_size:
            timeout: float | None = None
            if not self._buffer:
                deadline = None  # cleared in a rebalance: the wait starts again
            else:
                if deadline is None:
                    deadline = loop.time() + within_s
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except TimeoutError:
                pass
        batch = self._buffer[: self.batch_size]
        del self._buffer[: self.batch_size]
        self._space.set()
        if batch:
            if not self._in_hand.count:
                self.app.consumer._unacked_messages.add(self._in_hand)
            self._in_hand.count += len(batch)
        return batch

    def acknowledge(self, messages: list[Any]) -> None:
        """A batch taken is applied: its offsets may be committed."""
        consumer = self.app.consumer
        self._in_hand.count -= len(messages)
        if not self._in_hand.count:
            consumer._unacked_messages.discard(self._in_hand)
        acknowledge_offsets(consumer, self.topic, messages)
