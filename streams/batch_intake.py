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

- the message is tracked as unacknowledged when it is buffered and acknowledged with the consumer
  once its batch is applied, so that offsets are committed only for applied events, and a
  rebalance waits for the batch in hand (``Consumer.wait_empty``);
- the callback waits while Faust suspends the flow for a rebalance, and the buffer is one of the
  queues Faust's flow control clears, when the flow is suspended and again when it resumes:
  buffered messages are dropped unprocessed, and read again from the committed offsets (Faust
  seeks to them on every assignment) by whichever worker then holds their partitions;
- a full buffer makes the fetch loop wait: memory stays bounded when the detector falls behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Callback = Callable[[Any], Awaitable[None]]

# The fetch loop may run this many batches ahead of the detector and no further: a batch staged
# and one applied leave room to fetch the next ones, and memory stays bounded when the detector falls behind.
BUFFERED_BATCHES = 4


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

    async def offer(self, messages: list[Any]) -> None:
        """This topic's messages of one partition, in order: a fetch's (the eager consumer) or one
        (``on_message``). One wait for the flow and for room per part of them that fits."""
        track = self.app.consumer.track_message
        start = 0
        while start < len(messages):
            await self.app.flow_control.acquire()
            while len(self._buffer) >= self.max_buffered:
                self._space.clear()
                await self._space.wait()
            fits = messages[start : start + self.max_buffered - len(self._buffer)]
            for message in fits:
                track(message)
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
        return batch

    def acknowledge(self, messages: list[Any]) -> None:
        """The batch is applied: its offsets may be committed."""
        ack = self.app.consumer.ack
        for message in messages:
            ack(message)
