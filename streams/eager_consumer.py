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

The consumer also sets how long the broker may hold a fetch (``fetch_max_wait_ms``), which Faust
fixes at 1.5 s. A broker should answer a fetch as soon as it has data; Tansu does not always, so an
event that arrives while it holds a fetch can wait for the rest of the hold (benchmarks/latency.py
measures a bare consumer at both waits).
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Coroutine, Generator
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from faust.transport import by_url
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


class EagerConsumer(EagerWaitFirst, aiokafka_driver.Consumer):
    def _new_consumer_thread(self) -> aiokafka_driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


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
