"""The worker's view of its partitions: when a partition counts as idle."""

from __future__ import annotations

from streams.detection import StreamClock


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
