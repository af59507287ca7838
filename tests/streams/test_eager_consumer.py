"""The eager ``wait_first``: what Faust's own gives, without a task when the first coroutine does not wait.

Each behaviour is checked on mode's ``Service.wait_first`` too, so the tests show the two agree.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP
from mode.services import Service

from streams.eager_consumer import App, EagerConsumer, EagerTransport, EagerWaitFirst

STOCK_AND_EAGER = pytest.mark.parametrize("service_class", [Service, EagerWaitFirst], ids=["stock", "eager"])
seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


def run(service_class: type[Service], body: Callable[[Service], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        return await body(service_class())

    return asyncio.run(main())


def test_a_coroutine_that_does_not_wait_finishes_without_a_turn_of_the_loop() -> None:
    async def body(service: Service) -> tuple[Any, bool, bool]:
        turned = asyncio.Event()
        asyncio.get_running_loop().call_soon(turned.set)
        suspend = asyncio.Event()
        other = suspend.wait()

        async def deliver() -> int:
            return 5

        first = deliver()
        results = await service.wait_first(first, other)
        return results, turned.is_set(), other.cr_frame is None

    results, turned, other_closed = run(EagerWaitFirst, body)
    assert results.results == [5]
    assert not results.stopped
    assert not turned  # no task: the loop never ran the callback scheduled before
    assert other_closed  # the unstarted wait is closed, not left to warn "never awaited"


@STOCK_AND_EAGER
def test_a_coroutine_that_waits_goes_on_to_its_result(service_class: type[Service]) -> None:
    async def body(service: Service) -> Any:
        later = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, later.set_result, 7)

        async def deliver() -> int:
            await asyncio.sleep(0)
            return await later * 2

        return await service.wait_first(deliver(), asyncio.Event().wait())

    results = run(service_class, body)
    assert results.results == [14]
    assert not results.stopped


@STOCK_AND_EAGER
def test_a_suspension_cancels_a_coroutine_that_waits(service_class: type[Service]) -> None:
    cancelled: list[bool] = []

    async def body(service: Service) -> Any:
        suspend = asyncio.Event()
        asyncio.get_running_loop().call_later(0.01, suspend.set)

        async def deliver() -> None:
            try:
                await asyncio.Event().wait()  # a full queue that never drains
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        results = await service.wait_first(deliver(), suspend.wait())
        await asyncio.sleep(0.01)  # the cancellation reaches the coroutine on the next turn
        return results

    results = run(service_class, body)
    assert len(results.done) == 1
    assert results.results == [True]  # Event.wait's result: the suspension won
    assert cancelled == [True]


@STOCK_AND_EAGER
def test_a_cancellation_between_steps_reaches_the_coroutine(service_class: type[Service]) -> None:
    outcome: list[str] = []

    async def body(service: Service) -> Any:
        suspend = asyncio.Event()

        async def deliver() -> None:
            try:
                for step in range(1000):  # yields to the loop without waiting on a future
                    if step == 10:
                        suspend.set()
                    await asyncio.sleep(0)
                outcome.append("finished")
            except asyncio.CancelledError:
                outcome.append("cancelled")
                raise

        results = await service.wait_first(deliver(), suspend.wait())
        for _ in range(1100):
            await asyncio.sleep(0)
        return results

    assert run(service_class, body).results == [True]
    assert outcome == ["cancelled"]


@STOCK_AND_EAGER
@pytest.mark.parametrize("waits_first", [False, True], ids=["at-once", "after-a-wait"])
def test_an_error_in_the_coroutine_is_raised(service_class: type[Service], waits_first: bool) -> None:
    async def body(service: Service) -> Any:
        async def deliver() -> None:
            if waits_first:
                await asyncio.sleep(0.001)
            raise ValueError("bad message")

        return await service.wait_first(deliver(), asyncio.Event().wait())

    with pytest.raises(ValueError, match="bad message"):
        run(service_class, body)


@STOCK_AND_EAGER
def test_the_coroutine_keeps_its_context_across_waits_and_does_not_leak_it(service_class: type[Service]) -> None:
    async def body(service: Service) -> tuple[Any, str]:
        async def deliver() -> str:
            seen.set("in the callback")
            await asyncio.sleep(0.001)
            return seen.get()

        results = await service.wait_first(deliver(), asyncio.Event().wait())
        return results, seen.get()

    results, outside = run(service_class, body)
    assert results.results == ["in the callback"]
    assert outside == "unset"


@STOCK_AND_EAGER
def test_a_stopped_service_reports_stopped(service_class: type[Service]) -> None:
    async def body(service: Service) -> Any:
        service._stopped.set()

        async def deliver() -> int:
            return 1

        return await service.wait_first(deliver(), asyncio.Event().wait())

    assert run(service_class, body).stopped


def test_the_app_reads_kafka_through_the_eager_consumer() -> None:
    async def main() -> tuple[type, type]:
        app = App(
            "eager-test", broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False, fetch_max_wait_ms=100
        )
        return type(app.transport), app.transport.Consumer

    transport, consumer = asyncio.run(main())
    assert transport is EagerTransport
    assert consumer is EagerConsumer


def test_the_consumer_fetches_with_the_configured_broker_wait() -> None:
    async def main() -> int:
        app = App(
            "eager-test", broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False, fetch_max_wait_ms=77
        )
        kafka_consumer = app.consumer._thread._create_worker_consumer(app.transport)
        waited: int = kafka_consumer._fetch_max_wait_ms
        await kafka_consumer.stop()
        return waited

    assert asyncio.run(main()) == 77


def test_the_fetch_loop_hands_the_intakes_messages_over_a_partition_at_a_time() -> None:
    """One fetch, through the consumer's own loop (the broker's part stood in for): what Faust's loop
    does to each message is done, and the intake's topic goes to its taker a partition at a time."""
    canonical0, canonical1, other = TP("canonical", 0), TP("canonical", 1), TP("parcels.raw.csv", 0)

    def records(tp: TP, *offsets: int) -> list[ConsumerRecord[bytes, bytes]]:
        return [ConsumerRecord(tp.topic, tp.partition, o, 0, 0, None, b"v%d" % o, None, 0, 2, ()) for o in offsets]

    fetched = {
        canonical0: records(canonical0, 5, 6, 9),
        canonical1: records(canonical1, 3, 4),
        other: records(other, 0, 1),
    }
    offered: list[list[tuple[str, int, int]]] = []
    offered_as: list[Any] = []
    passed_on: list[tuple[str, int, int]] = []

    def seen(message: Any) -> tuple[str, int, int]:
        return (message.topic, message.partition, message.offset)

    class Taker:
        topic = "canonical"

        async def offer(self, messages: list[Any]) -> None:
            offered.append([seen(m) for m in messages])
            offered_as.extend(messages)

    async def main() -> tuple[dict[TP, int | None], list[tuple[int, int]]]:
        app = App("drain-test", broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False, fetch_max_wait_ms=5)
        consumer = app.consumer
        fetcher = Service()
        calls = 0

        async def next_records(timeout: float) -> tuple[Any, Any]:
            nonlocal calls
            calls += 1
            if calls > 1:
                fetcher._stopped.set()
                return None, None
            return fetched, set(fetched)

        async def callback(message: Any) -> None:
            passed_on.append(seen(message))

        consumer._wait_next_records = next_records
        consumer.highwater = lambda tp: 100
        consumer.callback = callback
        consumer.batch_taker = Taker()
        consumer._read_offset[canonical0] = 6  # 5 was read before a seek back: not handed on again
        app.topics.acks_enabled_for = lambda topic: True
        await consumer._drain_messages(fetcher)
        gaps = [(i.begin, i.end) for i in consumer._gap[canonical0]]
        return dict(consumer._read_offset), gaps

    read, gaps = asyncio.run(main())
    assert offered == [[("canonical", 0, 6), ("canonical", 0, 9)], [("canonical", 1, 3), ("canonical", 1, 4)]]
    # the records as fetched, not a Faust message built of each (streams/batch_intake.py says why)
    assert offered_as == [*fetched[canonical0][1:], *fetched[canonical1]]
    assert all(a is b for a, b in zip(offered_as, [*fetched[canonical0][1:], *fetched[canonical1]], strict=True))
    assert passed_on == [("parcels.raw.csv", 0, 0), ("parcels.raw.csv", 0, 1)]
    assert read == {canonical0: 9, canonical1: 4, other: 1}
    assert gaps == [(7, 10)]  # as Faust records the gap before offset 9, so that commits can pass it


def test_fausts_fetch_loop_is_the_one_the_eager_consumer_rewrites() -> None:
    """``EagerConsumer._drain_messages`` does what Faust's loop and ``getmany`` do (faust-streaming
    0.15.3). A Faust that changes either fails here: compare the two with the rewrite, then update it
    and these digests."""
    digests = {
        f.__name__: hashlib.sha256(inspect.getsource(f).encode()).hexdigest()[:16]
        for f in (FaustConsumer._drain_messages, FaustConsumer.getmany)
    }
    assert digests == {"_drain_messages": "44a2500309e83c63", "getmany": "4b168d84882a70d6"}
