"""The batch intake's own rules, on a Faust app's consumer (never started: no broker) and flow control.

The intake's place in a running worker (commits, rebalances, a killed worker) is exercised against
a real broker by test_replay.py and test_faults.py, which run with it by default.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP
from mode.utils.queues import FlowControlEvent

from streams.batch_intake import BatchIntake, acknowledge_offsets


@dataclass(frozen=True)
class _Message:
    topic: str
    offset: int
    partition: int = 0


@dataclass
class _App:
    """A Faust app's consumer, with its callback (Faust's conductor) recording what it is passed."""

    consumer: Any
    flow_control: FlowControlEvent
    passed_on: list[Any]

    def acked(self, partition: int = 0) -> list[int]:
        """The offsets acknowledged and not yet committed, as the consumer's next commit reads them."""
        return list(self.consumer._acked[TP("canonical", partition)])

    def in_hand(self) -> bool:
        """Whether a rebalance would wait (``Consumer.wait_empty``): something is still unacknowledged."""
        return any(not entry.acked for entry in self.consumer._unacked_messages)


def _faust_consumer() -> Any:
    app = faust.App("intake-test", broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False)
    app.topics.acks_enabled_for = lambda topic: True  # set by the subscription, when the app starts
    return app.consumer


def _intake(batch_size: int = 3, max_buffered: int = 6) -> tuple[BatchIntake, _App]:
    """Called in a running loop, as the worker builds it."""
    consumer = _faust_consumer()
    passed_on: list[Any] = []

    async def conductor(message: Any) -> None:
        passed_on.append(message)

    consumer.callback = conductor
    app = _App(consumer, FlowControlEvent(initially_suspended=False), passed_on)
    intake = BatchIntake(app, "canonical", batch_size, max_buffered)
    intake.install()
    return intake, app


def _messages(n: int, topic: str = "canonical") -> list[_Message]:
    return [_Message(topic, offset) for offset in range(n)]


def _run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())


def test_messages_of_other_topics_go_on_to_fausts_conductor() -> None:
    async def run() -> None:
        intake, app = _intake()
        other = _Message("parcels.raw.waybill-csv", 0)
        await app.consumer.callback(other)  # the callback the fetch loop now calls
        assert app.passed_on == [other] and intake.buffered == 0

    _run(run)


def test_a_full_batch_is_taken_in_order_and_in_hand_until_acknowledged() -> None:
    async def run() -> None:
        intake, app = _intake(batch_size=3)
        messages = _messages(4)
        for message in messages:
            await app.consumer.callback(message)
        assert intake.buffered == 4 and app.passed_on == []
        assert not app.in_hand()  # buffered, not taken: a rebalance clears them and need not wait
        batch = await asyncio.wait_for(intake.take(within_s=60), 5)
        assert batch == messages[:3]
        assert app.in_hand() and app.acked() == []  # taken is not applied
        intake.acknowledge(batch)
        assert not app.in_hand() and app.acked() == [0, 1, 2]

    _run(run)


def test_a_rebalance_waits_for_every_batch_in_hand() -> None:
    """Faust's ``wait_empty`` (what a rebalance and a stop await) returns once the last batch taken
    is acknowledged, not before; its commits are stood in for (no broker)."""

    async def run() -> None:
        intake, app = _intake(batch_size=2, max_buffered=4)
        commits: list[list[int]] = []

        async def commit(*args: Any, **kwargs: Any) -> bool:
            commits.append(app.acked())
            return True

        app.consumer.commit = commit
        app.consumer.commit_and_end_transactions = commit
        await intake.offer(_messages(4))
        first, second = await intake.take(within_s=60), await intake.take(within_s=60)
        waiting = asyncio.ensure_future(app.consumer.wait_empty())
        await asyncio.sleep(0.05)
        intake.acknowledge(first)
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the second batch is still in hand
        intake.acknowledge(second)
        await asyncio.wait_for(waiting, 5)
        assert commits[-1] == [0, 1, 2, 3]  # its last commit had every offset to commit

    _run(run)


def test_a_short_batch_goes_once_the_wait_has_passed_since_its_first_message() -> None:
    async def run() -> None:
        intake, app = _intake(batch_size=1000, max_buffered=1000)
        loop = asyncio.get_running_loop()
        taking = asyncio.ensure_future(intake.take(within_s=0.3))
        await asyncio.sleep(0.5)
        assert not taking.done()  # nothing to take: no batch however long it waits
        started = loop.time()
        for message in _messages(2):
            await app.consumer.callback(message)
        assert await asyncio.wait_for(taking, 5) == _messages(2)
        assert 0.25 <= loop.time() - started < 2

    _run(run)


def test_a_full_buffer_holds_the_fetch_loop_until_a_batch_is_taken() -> None:
    async def run() -> None:
        intake, app = _intake(batch_size=2, max_buffered=4)
        messages = _messages(5)
        for message in messages[:4]:
            await app.consumer.callback(message)
        fifth = asyncio.ensure_future(app.consumer.callback(messages[4]))
        await asyncio.sleep(0.1)
        assert not fifth.done() and intake.buffered == 4
        assert await intake.take(within_s=60) == messages[:2]
        await asyncio.wait_for(fifth, 5)
        assert intake.buffered == 3

    _run(run)


def test_a_rebalance_holds_new_messages_and_clears_the_buffered_ones() -> None:
    async def run() -> None:
        intake, app = _intake(batch_size=3, max_buffered=3)
        messages = _messages(5)
        for message in messages[:3]:
            await app.consumer.callback(message)
        blocked = asyncio.ensure_future(app.consumer.callback(messages[3]))  # the buffer is full
        await asyncio.sleep(0.05)
        app.flow_control.suspend()  # what Faust does when partitions are revoked
        app.flow_control.clear()
        await asyncio.sleep(0.05)
        held = asyncio.ensure_future(app.consumer.callback(messages[4]))
        await asyncio.sleep(0.05)
        assert not held.done()  # the flow is suspended
        await asyncio.wait_for(blocked, 5)  # the clear made room: it went in, during the rebalance
        # Partitions assigned again: Faust seeks to the committed offsets, then resumes the flow,
        # which clears what came in meanwhile (it is read again from those offsets).
        app.flow_control.resume()
        await asyncio.wait_for(held, 5)
        assert await asyncio.wait_for(intake.take(within_s=0.1), 5) == [messages[4]]
        assert app.acked() == []  # nothing cleared was acknowledged: its offsets stay uncommitted

    _run(run)


def test_install_gives_the_eager_consumer_the_intake_for_its_topic_in_bulk() -> None:
    async def run() -> None:
        intake, app = _intake()
        app.consumer.batch_taker = None  # as the eager consumer has it before the intake is installed
        intake.install()
        assert app.consumer.batch_taker is intake and intake.topic == "canonical"

    _run(run)


def test_messages_offered_in_bulk_are_taken_in_order() -> None:
    async def run() -> None:
        intake, app = _intake(batch_size=3, max_buffered=6)
        messages = _messages(5)
        taking = asyncio.ensure_future(intake.take(within_s=60))
        await asyncio.sleep(0.05)
        await intake.offer(messages[:2])
        await asyncio.sleep(0.05)
        assert not taking.done()  # two of three: the wait for a full batch goes on
        await intake.offer(messages[2:])
        assert await asyncio.wait_for(taking, 5) == messages[:3]
        assert app.passed_on == []
        assert await asyncio.wait_for(intake.take(within_s=0.1), 5) == messages[3:]

    _run(run)


def test_an_offer_larger_than_the_room_left_goes_in_as_batches_are_taken() -> None:
    async def run() -> None:
        intake, app = _intake(batch_size=2, max_buffered=4)
        messages = _messages(7)
        await intake.offer(messages[:1])
        offering = asyncio.ensure_future(intake.offer(messages[1:]))
        await asyncio.sleep(0.05)
        assert not offering.done() and intake.buffered == 4  # what fitted went in
        taken = [await intake.take(within_s=60) for _ in range(2)]
        await asyncio.wait_for(offering, 5)
        taken.append(await asyncio.wait_for(intake.take(within_s=0.1), 5))
        taken.append(await asyncio.wait_for(intake.take(within_s=0.1), 5))
        assert [m for batch in taken for m in batch] == messages

    _run(run)


def test_an_offer_waits_while_the_flow_is_suspended() -> None:
    async def run() -> None:
        intake, app = _intake(batch_size=2, max_buffered=4)
        app.flow_control.suspend()
        offering = asyncio.ensure_future(intake.offer(_messages(2)))
        await asyncio.sleep(0.05)
        assert not offering.done() and intake.buffered == 0
        app.flow_control.resume()
        await asyncio.wait_for(offering, 5)
        assert await asyncio.wait_for(intake.take(within_s=60), 5) == _messages(2)

    _run(run)


def test_the_buffer_holds_at_least_one_batch() -> None:
    with pytest.raises(ValueError, match="at least one batch"):
        BatchIntake(object(), "canonical", batch_size=10, max_buffered=5)


def test_acknowledging_offsets_in_bulk_leaves_fausts_bookkeeping_as_its_own_ack_does() -> None:
    """Records acknowledged a batch at a time (``acknowledge_offsets``) and the same records as
    Faust's messages acknowledged one at a time (``Consumer.ack``) leave one state: the offsets each
    partition's next commit reads, and the count that triggers a commit. Batches come in any order,
    repeat offsets (a redelivery), and fall below a committed offset (a rebalance)."""

    def record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
        return ConsumerRecord("canonical", partition, offset, 0, 0, None, b"v", None, 0, 1, ())

    async def run() -> None:
        rng = random.Random(5)
        bulk, each = _faust_consumer(), _faust_consumer()
        for consumer in (bulk, each):
            consumer._committed_offset[TP("canonical", 1)] = 40
        for _ in range(200):
            batch = [record(rng.randrange(3), rng.randrange(60)) for _ in range(rng.randrange(1, 30))]
            acknowledge_offsets(bulk, "canonical", batch)
            for r in batch:
                each.ack(each._to_message(TP(r.topic, r.partition), r))
            if rng.random() < 0.1:  # a commit between batches takes what is contiguous
                tp = TP("canonical", rng.randrange(3))
                assert bulk._new_offset(tp) == each._new_offset(tp)
        for partition in range(3):
            tp = TP("canonical", partition)
            assert sorted(bulk._acked[tp]) == sorted(each._acked[tp])
            assert bulk._acked_index[tp] == each._acked_index[tp]
            assert bulk._new_offset(tp) == each._new_offset(tp)
        assert bulk._n_acked == each._n_acked > 0

    _run(run)


def test_fausts_bookkeeping_is_the_one_the_intake_takes_part_in() -> None:
    """``acknowledge_offsets`` does what ``Consumer.ack`` does (faust-streaming 0.15.3), and the
    intake's batches in hand are waited for as ``wait_empty`` waits for Faust's messages. A Faust that
    changes these fails here: compare them with streams/batch_intake.py, then update it and these digests."""
    digests = {
        f.__name__: hashlib.sha256(inspect.getsource(f).encode()).hexdigest()[:16]
        for f in (FaustConsumer.ack, FaustConsumer.wait_empty, FaustConsumer._clean_unacked_messages)
    }
    assert digests == {
        "ack": "5fcf41cf45153475",
        "wait_empty": "e4662fe24f094819",
        "_clean_unacked_messages": "11be2587e71c9162",
    }
