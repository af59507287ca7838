"""Faust's consumer without four asyncio tasks per message.

Faust's fetch loop (``Consumer._drain_messages``) hands each message to the topic's channels through
``Service.wait_first(callback(message), suspend_flow.wait())``, which wraps the callback and three
events (suspend, stop, crash) in four tasks and an ``asyncio.wait``, then cancels three of them. The
callback almost never waits: it puts the event into the channel's queue and returns. Only a full
queue, suspended flow (a rebalance) or a full producer buffer makes it wait.

``EagerConsumer.wait_first`` runs the first coroutine's first step at once, as Python 3.12's eager
tasks do. If that step finishes the coroutine, the result is returned without any task; the other
waits are closed unstarted. If it has to wait, the started coroutine goes on under Faust's own
``wait_first``, so a rebalance or a stop still cancels it as before. Either way the callback's first
step runs before anything else can, which is what the original gives too (its task is the first one
scheduled). benchmarks/throughput.py measures what this is worth, beside stock Faust.

With a batch intake installed (streams/batch_intake.py), ``EagerConsumer`` also hands the intake's
messages over a partition's fetched records at a time, where Faust's fetch loop (``getmany`` and
``_drain_messages``) passes each message through a generator, a look-up of the partition's high
watermark for the monitor and a callback of its own. In a worker that loop and callback were
about a sixth of its CPU (py-spy). The intake gets the records as aiokafka fetched them, not
Faust's messages built of them (streams/batch_intake.py says why). Everything else the loop does
for a message is still done, once per message or, where it is the same for all of a partition's
records in one fetch (the flow, the consumer generation, the assignment, the high watermark), once
per partition: messages older than the partition's read offset (read before a seek) are skipped,
a gap in offsets is recorded so that commits can pass it, the periodic commit runs, and the read
offset moves on. Messages of every other topic go through Faust's callback one by one, as before.
The rewrite follows faust-streaming 0.15.3; tests/streams/test_eager_consumer.py fails on a Faust
whose loop differs.

The consumer also sets how long the broker may hold a fetch (``fetch_max_wait_ms``), which Faust
fixes at 1.5 s. A broker should answer a fetch as soon as it has data; Tansu does not always, so an
event that arrives while it holds a fetch can wait for the rest of the hold (benchmarks/latency.py
measures a bare consumer at both waits).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Coroutine, Generator
from typing import Any, Protocol

import faust
from aiokafka import AIOKafkaConsumer
from faust.transport import by_url
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TransportT
from mode.services import Service, WaitArgT, WaitResults
from mode.utils.times import Seconds

from streams.errors import StreamsError


class _Started:
    """An awaitable that goes on with ``coro``, already started and now waiting on ``pending``, as
    ``yield from`` would; each step runs in ``context``, the one its first step ran in."""

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any, context: contextvars.Context) -> None:
        self.coro, self.pending, self.context = coro, pending, context

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending, context = self.coro, self.pending, self.context
        while True:
            thrown: BaseException | None = None
            sent = None
            try:
                sent = yield pending
            except BaseException as exc:  # noqa: BLE001 - thrown in by the task (a cancellation): handed on
                thrown = exc
            try:
                pending = context.run(coro.send, sent) if thrown is None else context.run(coro.throw, thrown)
            except StopIteration as stop:
                return stop.value


class EagerWaitFirst(Service):
    """``Service.wait_first`` that runs its first coroutine's first step at once."""

    async def wait_first(self, *coros: WaitArgT, timeout: Seconds | None = None) -> WaitResults:
        first, others = coros[0], coros[1:]
        if not inspect.iscoroutine(first):
            return await super().wait_first(*coros, timeout=timeout)  # type: ignore[arg-type] # mode: implicit Optional
        context = contextvars.copy_context()
        try:
            pending = context.run(first.send, None)
        except BaseException as exc:
            for other in others:
                if inspect.iscoroutine(other):
                    other.close()
            if not isinstance(exc, StopIteration):
                raise
            if self._stopped.is_set() or self._crashed.is_set():
                return WaitResults([], [], True)
            return WaitResults([first], [exc.value], False)
        started = _Started(first, pending, context)
        return await super().wait_first(started, *others, timeout=timeout)  # type: ignore[arg-type] # as above


class _ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: aiokafka_driver.Transport) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        if not hasattr(consumer, "_fetch_max_wait_ms"):
            raise StreamsError(
                "aiokafka's consumer no longer has _fetch_max_wait_ms: update streams/eager_consumer.py "
                "for the installed aiokafka, or set PARCELWATCH_FAUST_CONSUMER=stock"
            )
        # Read by the consumer's fetcher when it starts, which is after this.
        consumer._fetch_max_wait_ms = getattr(self.app, "fetch_max_wait_ms", consumer._fetch_max_wait_ms)
        return consumer


class BatchTaker(Protocol):
    """What the fetch loop hands a partition's messages to (streams/batch_intake.py)."""

    topic: str

    async def offer(self, messages: list[Any]) -> None: ...


class EagerConsumer(EagerWaitFirst, aiokafka_driver.Consumer):
    # Set before the consumer starts (BatchIntake.install): its topic's messages go to it in bulk.
    batch_taker: BatchTaker | None = None

    def _new_consumer_thread(self) -> aiokafka_driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop (``Consumer._drain_messages`` over ``Consumer.getmany``, faust-streaming
        0.15), with the batch taker's messages handed over a partition at a time."""
        taker = self.batch_taker
        if taker is None:
            await super()._drain_messages(fetcher)
            return
        callback, app = self.callback, self.app
        read_offset = self._read_offset
        acks_enabled_for = app.topics.acks_enabled_for
        to_message = self._to_message
        consumer_should_stop, fetcher_should_stop = self._stopped.is_set, fetcher._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records, active = await self._wait_next_records(1.0)
                await self.sleep(0)
                if records is None or self.should_stop:
                    continue
                if not self.flow_active:
                    await self._seek_back()
                    continue
                generation = app.consumer_generation_id
                interrupted = False
                for tp, fetched in records.items():
                    if active is not None and tp not in active and tp not in self._buffered_partitions:
                        continue
                    app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    commit_every = self._commit_every
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    mine = tp.topic == taker.topic
                    taken: list[Any] = []
                    for record in fetched:
                        # As Faust checks before each message: a rebalance may have begun meanwhile.
                        if not self.flow_active or app.consumer_generation_id != generation:
                            interrupted = True
                            break
                        offset = record.offset
                        last = read_offset[tp]
                        if last is not None and offset < last:
                            continue  # read before a seek back: Faust drops it too
                        if last and offset - last > 1 and acks_enabled_for(tp.topic):
                            await self._add_gap(tp, last + 1, offset)
                        if mine:
                            taken.append(record)  # as fetched: the intake needs no Faust message
                        else:
                            await self.wait_first(callback(to_message(tp, record)), self.suspend_flow.wait())
                        read_offset[tp] = offset
                    if taken:
                        # As for Faust's callback: a rebalance that suspends the flow meanwhile drops them.
                        await self.wait_first(taker.offer(taken), self.suspend_flow.wait())
                    if interrupted:
                        break
                    await asyncio.sleep(0)  # the detector and timers run between partitions
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _seek_back(self) -> None:
        """As Faust's ``getmany`` does when called with the flow stopped."""
        try:
            await self.perform_seek()
        except Exception as exc:  # noqa: BLE001 - Faust logs it and fetches on
            self.log.warning("exception performing seek when flow not active %r", exc)


class EagerTransport(aiokafka_driver.Transport):
    Consumer = EagerConsumer


class App(faust.App):
    """A Faust app whose Kafka consumer is ``EagerConsumer`` (other transports are left as they are),
    fetching with a broker wait of ``fetch_max_wait_ms``."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> TransportT:
        transport = by_url(self.conf.broker_consumer[0])
        if issubclass(transport, aiokafka_driver.Transport):
            transport = EagerTransport
        return transport(self.conf.broker_consumer, self)
