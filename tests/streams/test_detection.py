"""The worker's view of its partitions (when a partition counts as idle), and its two stages."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from detectors.alert_store import RedisAlertStore
from detectors.entities import Pseudonymizer
from detectors.parcel_store import RedisParcelStore
from detectors.pipeline import Detector
from detectors.reference import load_reference
from detectors.rules import load_rules
from detectors.store_redis import RedisWindowStore
from detectors.windows import WindowConfig
from streams.detection import Detection, StreamClock
from streams.health import Health
from streams.metrics import Metrics
from streams.servers import RunningServer

ROOT = Path(__file__).resolve().parents[2]


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_partition_is_idle_only_when_processed_to_its_end_and_quiet() -> None:
    time = FakeTime()
    clock = StreamClock(idle_after_s=5.0, monotonic=time)
    clock.observe(0, 41, 1_000)
    clock.observe(0, 40, 900)  # an older offset and time change neither the position nor the maximum
    assert clock.report(0, highwater=42, committed=None, polled_s_ago=0.1).max_event_ms == 1_000
    assert not clock.report(
        0, highwater=42, committed=None, polled_s_ago=0.1
    ).idle  # processed to the end, but not quiet yet
    time.now += 5.0
    assert clock.report(0, highwater=42, committed=None, polled_s_ago=0.1).idle
    assert not clock.report(
        0, highwater=50, committed=None, polled_s_ago=0.1
    ).idle  # new messages arrived: not caught up


def test_an_unread_partition_relies_on_the_committed_offset() -> None:
    time = FakeTime()
    clock = StreamClock(idle_after_s=1.0, monotonic=time)
    assert not clock.report(3, highwater=10, committed=4, polled_s_ago=0.1).idle  # first sight starts the quiet timer
    time.now += 2.0
    assert not clock.report(3, highwater=10, committed=4, polled_s_ago=0.1).idle  # six messages still to process
    assert clock.report(3, highwater=10, committed=10, polled_s_ago=0.1).idle
    assert (
        clock.report(3, highwater=0, committed=None, polled_s_ago=0.1).idle is False
    )  # unknown committed offset: not idle
    assert (
        clock.report(3, highwater=None, committed=10, polled_s_ago=0.1).idle is False
    )  # unknown high watermark: not idle


def test_a_stale_high_watermark_never_makes_a_partition_idle() -> None:
    """A consumer busy with other partitions stops fetching this one: its old high watermark says
    nothing of what was published since, so the partition must keep holding time back."""
    time = FakeTime()
    clock = StreamClock(idle_after_s=1.0, monotonic=time)
    clock.observe(0, 9, 1_000)
    time.now += 2.0
    assert clock.report(0, highwater=10, committed=None, polled_s_ago=0.2).idle
    assert not clock.report(0, highwater=10, committed=None, polled_s_ago=5.0).idle
    assert not clock.report(0, highwater=10, committed=None, polled_s_ago=None).idle


@dataclass(frozen=True)
class _Partition:
    topic: str
    partition: int


@dataclass(frozen=True)
class _Message:
    """What the worker reads of a Faust message: its place and its raw value."""

    partition: int
    offset: int
    value: bytes


class _Consumer:
    """The two questions the worker asks Faust's consumer of its partitions (no Kafka behind them)."""

    def __init__(self, highwater: int) -> None:
        self._highwater = highwater

    def assignment(self) -> set[_Partition]:
        return {_Partition("canonical", 0)}

    def highwater(self, tp: _Partition) -> int:
        return self._highwater


@pytest.mark.integration
def test_a_tick_never_reports_a_staged_batch_before_its_store_call(redis_srv: RunningServer) -> None:
    """The worker stages the next batch while the previous one is in Redis. A tick in between must
    not report the staged batch's progress: its store call would then refuse the batch's earlier
    events as late. Here the batch holds t1 then t0 < t1 on one partition, lateness 0."""
    lines = (ROOT / "tests" / "data" / "replay_stream.jsonl").read_bytes().splitlines()[:2]
    t1 = 1_788_300_000_000
    values = [
        orjson.dumps(orjson.loads(line) | {"event_time": t}) for line, t in zip(lines, (t1, t1 - 60_000), strict=True)
    ]
    events = [_Message(0, offset, value) for offset, value in enumerate(values)]
    dead: list[tuple[Any, ...]] = []

    async def dead_letter(*args: Any) -> None:
        dead.append(args)

    async def nothing(*_: Any) -> Any:
        return None

    async def run() -> None:
        client = aioredis.from_url(redis_srv.url)
        detector = Detector(
            load_reference(), load_rules(ROOT / "detectors" / "data" / "rules.toml"), Pseudonymizer(b"k" * 16)
        )
        store = RedisWindowStore(client, WindowConfig(allowed_lateness_s=0), prefix="staged")
        detection = Detection(
            detector=detector,
            window_store=store,
            alert_store=RedisAlertStore(client, prefix="staged"),
            parcel_store=RedisParcelStore(client, prefix="staged"),
            clock=StreamClock(idle_after_s=5.0),
            lateness_s=0,
            send_dead_letter=dead_letter,
            send_alerts=nothing,
            published_since=nothing,
            committed_offset=nothing,
            metrics=Metrics(CollectorRegistry()),
            health=Health(),
        )
        consumer = _Consumer(highwater=len(events))
        staged = await detection.stage(events, consumer, "canonical", 1)
        await detection.tick(consumer, "canonical", 1)
        assert store.round_trips == 0  # the tick left the staged batch's progress to its own call
        await detection.apply(staged)
        assert store.round_trips == 1 and detection.unapplied == 0
        assert dead == []  # neither event refused as late
        await detection.tick(consumer, "canonical", 1)  # nothing staged now: the tick reports
        assert store.round_trips == 2
        await client.aclose()

    asyncio.run(run())
