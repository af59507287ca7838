"""The detector as a library over a recorded stream: one partition, read in order, no broker.

This is the reference the real pipeline is held to (tests/replay_expectations.py) and the fast
path the quality benchmark offers for exploring; both go through :func:`process_batch`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from detectors.entities import EntityRef
from detectors.errors import InvalidEvent
from detectors.events import ParcelEvent
from detectors.pipeline import Detector, process_batch
from detectors.store import ClockInput, PartitionReport, WindowStore
from detectors.validation import parse


def parse_valid(lines: Iterable[bytes]) -> list[ParcelEvent]:
    """The events a worker would accept; malformed lines are skipped (a worker dead-letters them)."""
    events = []
    for line in lines:
        try:
            events.append(parse(line))
        except InvalidEvent:
            continue
    return events


async def detect_in_order(
    events: Sequence[ParcelEvent], detector: Detector, store: WindowStore, lateness_s: int, batch: int = 500
) -> list[dict[str, Any]]:
    """Every alert document, in the order raised: batches in order, then idle flushes until nothing is due."""
    alerts: dict[str, dict[str, Any]] = {}
    seen_max: int | None = None
    due: tuple[EntityRef, ...] = ()
    chunks = [events[start : start + batch] for start in range(0, len(events), batch)]
    for chunk in [*chunks, []]:
        while True:
            times = [e.event_time_ms for e in chunk] + ([seen_max] if seen_max is not None else [])
            seen_max = max(times) if times else None
            clock = ClockInput((PartitionReport(0, seen_max, idle=not chunk),), 1, lateness_s, due)
            outcome = await process_batch(chunk, detector, store, clock)
            due = outcome.due
            for alert in outcome.alerts:
                alerts.setdefault(alert["alert_id"], alert)
            await store.acknowledge(outcome.raised)
            if chunk or not due:
                break
    return list(alerts.values())
