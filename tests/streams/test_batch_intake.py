"""The batch intake's own rules, on Faust's flow control and a stand-in for its consumer's bookkeeping.

The intake's place in a running worker (commits, rebalances, a killed worker) is exercised against
a real broker by test_replay.py and test_faults.py, which run with it by default.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from mode.utils.queues import FlowControlEvent

from streams.batch_intake import BatchIntake


@dataclass(frozen=True)
class _Message:
    topic: str
    offset: int


@dataclass
class _Consumer:
    """The consumer's side of a message's life that the intake takes part in."""

    passed_on: list[Any] = field(default_factory=list)
    tracked: list[Any] = field(default_factory=list)
    acked: list[Any] = field(default_factory=list)
    batch_taker: Any = None  # the eager consumer's (streams/eager_consumer.py)

    async def callback(self, message: Any) -> None:  # Faust's conductor
        self.passed_on.append(message)

    def track_message(self, message: Any) -> None:
        self.tracked.append(message)

    def ack(self, message: Any) -> bool:
        self.acked.append(message)
        return True


@dataclass
class _App:
    consumer: _Consumer
    flow_control: FlowControlEvent


def _intake(batch_size: int = 3, max_buffered: int = 6) -> tuple[BatchIntake, _App]:
    app = _App(_Consumer(), FlowControlEvent(initially_suspended=False))
    intake = BatchIntake(app, "canonical", batch_size, max_buffered)
    intake.install()
    return intake, app


def _messages(n: int, topic: str = "canonical") -> list[_Message]:
    return [_Message(topic, offset) for offset in range(n)]


def test_messages_of_other_topics_go_on_to_fausts_conductor() -> None:
    async def run() -> None:
        intake, app = _intake()
        other = _Message("parcels.raw.waybill-csv", 0)
        await app.consumer.callback(other)  # the callback the fetch loop now calls
        assert app.consumer.passed_on == [other] and app.consumer.tracked == []

    asyncio.run(run())


def test_a_full_batch_is_taken_in_order_and_tracked_until_acknowledged() -> None:
    async def run() -> None:
        intake, app = _intake(batch_size=3)
        messages = _messages(4)
        for message in messages:
            await app.consumer.callback(message)
        assert app.consumer.tracked == messages and app.consumer.passed_on == []
        batch = await asyncio.wait_for(intake.take(within_s=60), 5)
        assert batch == messages[:3]
        assert app.consumer.acked == []  # taken is not applied
        intake.acknowledge(batch)
        assert app.consumer.acked == messages[:3]

    asyncio.run(run())


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

    asyncio.run(run())


def test_a_full_buffer_holds_the_fetch_loop_until_a_batch_is_taken() -> None:
    async def run() -> None:
        intake, app = _intake(batch_size=2, max_buffered=4)
        messages = _messages(5)
        for message in messages[:4]:
            await app.consumer.callback(message)
        fifth = asyncio.ensure_future(app.consumer.callback(messages[4]))
        await asyncio.sleep(0.1)
        assert not fifth.done() and len(app.consumer.tracked) == 4
        assert await intake.take(within_s=60) == messages[:2]
        await asyncio.wait_for(fifth, 5)
        assert app.consumer.tracked == messages

    asyncio.run(run())


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
        assert app.consumer.acked == []  # nothing cleared was acknowledged: its offsets stay uncommitted

    asyncio.run(run())


def test_install_gives_the_eager_consumer_the_intake_for_its_topic_in_bulk() -> None:
    intake, app = _intake()
    assert app.consumer.batch_taker is intake and intake.topic == "canonical"


def test_messages_offered_in_bulk_are_tracked_and_taken_in_order() -> None:
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
        assert app.consumer.tracked == messages and app.consumer.passed_on == []
        assert await asyncio.wait_for(intake.take(within_s=0.1), 5) == messages[3:]

    asyncio.run(run())


def test_an_offer_larger_than_the_room_left_goes_in_as_batches_are_taken() -> None:
    async def run() -> None:
        intake, app = _intake(batch_size=2, max_buffered=4)
        messages = _messages(7)
        await intake.offer(messages[:1])
        offering = asyncio.ensure_future(intake.offer(messages[1:]))
        await asyncio.sleep(0.05)
        assert not offering.done() and app.consumer.tracked == messages[:4]  # what fitted went in
        taken = [await intake.take(within_s=60) for _ in range(2)]
        await asyncio.wait_for(offering, 5)
        assert app.consumer.tracked == messages
        taken.append(await asyncio.wait_for(intake.take(within_s=0.1), 5))
        taken.append(await asyncio.wait_for(intake.take(within_s=0.1), 5))
        assert [m for batch in taken for m in batch] == messages

    asyncio.run(run())


def test_an_offer_waits_while_the_flow_is_suspended() -> None:
    async def run() -> None:
        intake, app = _intake(batch_size=2, max_buffered=4)
        app.flow_control.suspend()
        offering = asyncio.ensure_future(intake.offer(_messages(2)))
        await asyncio.sleep(0.05)
        assert not offering.done() and app.consumer.tracked == []
        app.flow_control.resume()
        await asyncio.wait_for(offering, 5)
        assert await asyncio.wait_for(intake.take(within_s=60), 5) == _messages(2)

    asyncio.run(run())


def test_the_buffer_holds_at_least_one_batch() -> None:
    app = _App(_Consumer(), FlowControlEvent(initially_suspended=False))
    with pytest.raises(ValueError, match="at least one batch"):
        BatchIntake(app, "canonical", batch_size=10, max_buffered=5)
