"""A peer: the windowed job written with Quix Streams (true sliding windows, RocksDB).

    python benchmarks/quix_windowed.py BOOTSTRAP TOPIC GROUP N

Runs in a venv of its own (benchmarks/peers.py makes it: Quix Streams is not a dependency).
Row at a time, as Quix Streams works: the same validation, scoring and entities per event; each
windowed entity update with suspect mass is re-keyed by entity (through a topic, as
``group_by`` does), summed over a 30-day sliding window in event time (6 h grace), and the sum read against
the rule's threshold. Prints one JSON line (events, seconds from the first event until every
row it produced was windowed or dropped as late, crossings, rows, late) and exits.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from quixstreams import Application

from detectors.entities import Pseudonymizer
from detectors.errors import InvalidEvent
from detectors.pipeline import entity_updates
from detectors.reference import load_reference
from detectors.rules import load_rules
from detectors.scoring import score_batch
from detectors.validation import parse

DAY_MS = 86_400_000
bootstrap, topic_name, group, target = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
reference = load_reference()
rules = load_rules(Path(__file__).parents[1] / "detectors" / "data" / "rules.toml")
thresholds = {rule.entity_type: rule.threshold_kg for rule in rules.rules if rule.window_s * 1000 == 30 * DAY_MS}
# The sum leaves the group-by key behind; the 30-day rules share one threshold (checked here).
(THRESHOLD_KG,) = set(thresholds.values())
pseudonymizer = Pseudonymizer(b"benchmark-secret-0123456789")
seen: dict[str, Any] = {"events": 0, "rows": 0, "windowed": 0, "first": 0.0, "crossings": 0, "late": 0}


def event_time(value: Any, _headers: Any, timestamp: int, _kind: Any) -> int:
    try:
        found = orjson.loads(value).get("event_time")
    except (orjson.JSONDecodeError, AttributeError):
        return timestamp
    return found if isinstance(found, int) else timestamp


def rows(value: bytes) -> list[dict[str, Any]]:
    if seen["events"] == 0:
        seen["first"] = time.perf_counter()
    seen["events"] += 1
    try:
        event = parse(value)
    except InvalidEvent:
        return []
    groups, _, _, _ = entity_updates(
        [event], score_batch([event], reference), pseudonymizer, windowed=frozenset(thresholds)
    )
    out = [
        {"entity": f"{g.entity.entity_type}:{g.entity.key}", "mass": u.mass_kg}
        for g in groups
        for u in g.updates
        if u.mass_kg > 0
    ]
    seen["rows"] += len(out)
    return out


def late(*_: Any) -> bool:
    """A row behind its partition's stream time by more than the grace: Quix drops it."""
    seen["late"] += 1
    done()
    return False


def judged(row: dict[str, Any]) -> dict[str, Any]:
    if row["value"] >= THRESHOLD_KG:
        seen["crossings"] += 1
    done()
    return row


def done() -> None:
    seen["windowed"] += 1
    if seen["events"] >= target and seen["windowed"] >= seen["rows"]:
        result = {
            "events": seen["events"],
            "seconds": time.perf_counter() - seen["first"],
            "crossings": seen["crossings"],
            "rows": seen["rows"],
            "late": seen["late"],
        }
        print(orjson.dumps(result).decode(), flush=True)
        os._exit(0)


app = Application(
    broker_address=bootstrap,
    consumer_group=group,
    auto_offset_reset="earliest",
    state_dir=tempfile.mkdtemp(prefix="pw-quix-"),
    loglevel="WARNING",
)
source = app.topic(topic_name, value_deserializer="bytes", key_deserializer="bytes", timestamp_extractor=event_time)
by_entity = app.topic(f"{topic_name}.by-entity", value_deserializer="json", value_serializer="json")
# Quix derives repartition and changelog topics from the input topics' retention as the broker
# describes it; Tansu does not describe it, so it is given here (unlimited, as Tansu keeps it).
for topic in (source, by_entity):
    topic.broker_config.extra_config.setdefault("retention.ms", "-1")
app.dataframe(source).apply(rows, expand=True).to_topic(by_entity, key=lambda row: row["entity"].encode())
sdf = app.dataframe(by_entity)
sdf = (
    sdf.apply(lambda row: row["mass"])
    .sliding_window(duration_ms=30 * DAY_MS, grace_ms=6 * 3_600_000, on_late=late)
    .sum()
    .current()
)
sdf = sdf.apply(judged)

if __name__ == "__main__":
    app.run()
