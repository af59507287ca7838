"""The recorded replay stream and its expected alerts, computed by the in-process memory store.

The stream is ``parcelwatch simulate --seed 11 --days 40 --scale 0.1 --out tests/data/replay_stream.jsonl``;
``python -m tests.replay_expectations`` rewrites tests/data/replay_stream.expected.jsonl; the unit
tier checks that the file still equals the memory store's result and the ground truth, and the
integration tier checks that the real pipeline (Tansu, Faust worker, Redis/Lua) produces it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import orjson

from detectors.entities import Pseudonymizer
from detectors.offline import detect_in_order, parse_valid
from detectors.pipeline import Detector
from detectors.reference import load_reference
from detectors.rules import load_rules
from detectors.store_memory import MemoryWindowStore
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
    run = detect_in_order(parse_valid(lines), detector, store, store.config.allowed_lateness_s, batch)
    return sorted((essence(a) for a in asyncio.run(run)), key=lambda a: a["alert_id"])


def stream_counts() -> tuple[int, int]:
    """Lines in the recorded stream and how many of them are malformed, from its ground truth."""
    truth = json.loads(TRUTH.read_text(encoding="utf-8"))
    return truth["events"], truth["malformed_lines"]


def read_expected() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in EXPECTED.read_bytes().splitlines() if line.strip()]


if __name__ == "__main__":
    alerts = memory_store_alerts(STREAM.read_bytes().splitlines())
    EXPECTED.write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in alerts))
    print(f"wrote {len(alerts)} expected alerts to {EXPECTED}")
