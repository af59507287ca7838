"""The recorded replay stream and its expected alerts, computed by the in-process memory store.

``python -m tests.replay_expectations`` rewrites tests/data/replay_stream.expected.jsonl; the unit
tier checks that the file still equals the memory store's result and the ground truth, and the
integration tier checks that the real pipeline (Tansu, Faust worker, Redis/Lua) produces it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from detectors.entities import EntityRef, Pseudonymizer
from detectors.errors import InvalidEvent
from detectors.pipeline import Detector, process_batch
from detectors.reference import load_reference
from detectors.rules import load_rules
from detectors.store import ClockInput, PartitionReport
from detectors.store_memory import MemoryWindowStore
from detectors.validation import parse
from detectors.windows import WindowConfig

DATA = Path(__file__).parent / "data"
STREAM = DATA / "replay_stream.jsonl"
EXPECTED = DATA / "replay_stream.expected.jsonl"
TRUTH = DATA / "replay_stream.truth.json"
SECRET = "replay-test-secret-0001"
RULES = Path(__file__).parents[1] / "detectors" / "data" / "rules.toml"


def essence(alert: dict[str, Any]) -> dict[str, Any]:
    """What must match exactly between runs."""
    keys = (
        "alert_id",
        "rule",
        "entity_type",
        "entity_key",
        "episode",
        "parcel_count",
        "suspect_mass_kg",
        "first_event_time",
        "last_event_time",
        "severity",
    )
    return {k: alert[k] for k in keys} | {"parcel_ids": sorted(alert["parcel_ids"])}


def memory_store_alerts(lines: list[bytes], batch: int = 500) -> list[dict[str, Any]]:
    detector = Detector(load_reference(), load_rules(RULES), Pseudonymizer(SECRET.encode()))
    store = MemoryWindowStore(WindowConfig.for_rules(detector.rules.longest_window_s))
    events = []
    for line in lines:
        try:
            events.append(parse(line))
        except InvalidEvent:
            continue

    lateness_s = store.config.allowed_lateness_s

    async def run() -> dict[str, dict[str, Any]]:
        """One partition read in file order, then flushes with the partition idle until nothing is due."""
        alerts: dict[str, dict[str, Any]] = {}
        seen_max: int | None = None
        due: tuple[EntityRef, ...] = ()
        chunks = [events[start : start + batch] for start in range(0, len(events), batch)]
        for chunk in [*chunks, []]:
            while True:
                seen_max = max([e.event_time_ms for e in chunk] + ([seen_max] if seen_max is not None else []))
                clock = ClockInput((PartitionReport(0, seen_max, idle=not chunk),), 1, lateness_s, due)
                outcome = await process_batch(chunk, detector, store, clock)
                due = outcome.due
                for alert in outcome.alerts:
                    alerts.setdefault(alert["alert_id"], alert)
                await store.acknowledge(outcome.raised)
                if chunk or not due:
                    break
        return alerts

    return sorted((essence(a) for a in asyncio.run(run()).values()), key=lambda a: a["alert_id"])


def read_expected() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in EXPECTED.read_bytes().splitlines() if line.strip()]


if __name__ == "__main__":
    alerts = memory_store_alerts(STREAM.read_bytes().splitlines())
    EXPECTED.write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in alerts))
    print(f"wrote {len(alerts)} expected alerts to {EXPECTED}")
