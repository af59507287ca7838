"""A peer: the windowed job written with Bytewax (a Rust dataflow engine driving Python steps).

    python benchmarks/bytewax_windowed.py BOOTSTRAP TOPIC N

Runs in a venv of its own (benchmarks/peers.py makes it: Bytewax is not a dependency). One worker
(``run_main``) reads every partition of the topic to its end with Bytewax's Kafka source. A batch
of messages at a time (``flat_map_batch``), the same validation, scoring and entities as the
pipeline; each windowed entity update with suspect mass is keyed by entity and summed with
``fold_window`` in 30-day windows hopping by a day (Bytewax's ``SlidingWindower``: windows of a
fixed length at a fixed offset, as Faust's hopping tables; no window per event), in event time
with 6 h of grace. At the end of the input every window closes; those whose sum reaches the
rule's threshold are counted. Prints one JSON line (events, seconds from the first event until
the dataflow ended, windows at or over the threshold and their entities, rows, rows late) and exits.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
import orjson
from bytewax.connectors.kafka import KafkaSource, KafkaSourceMessage
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import EventClock, SlidingWindower, fold_window
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import run_main

from detectors.entities import Pseudonymizer
from detectors.errors import InvalidEvent
from detectors.pipeline import entity_updates
from detectors.reference import load_reference
from detectors.rules import load_rules
from detectors.scoring import score_batch
from detectors.validation import parse

DAY = timedelta(days=1)
reference = load_reference()
rules = load_rules(Path(__file__).parents[1] / "detectors" / "data" / "rules.toml")
thresholds = {rule.entity_type: rule.threshold_kg for rule in rules.rules if rule.window_s == 30 * 86_400}
pseudonymizer = Pseudonymizer(b"benchmark-secret-0123456789")
seen: dict[str, Any] = {"events": 0, "rows": 0, "first": 0.0, "over": 0, "entities": set(), "late": set()}


def rows(messages: list[KafkaSourceMessage[bytes | None, bytes | None]]) -> list[tuple[str, tuple[str, float, int]]]:
    """(entity, (entity type, mass, event time ms)) for each windowed update with suspect mass."""
    if seen["events"] == 0:
        seen["first"] = time.perf_counter()
    seen["events"] += len(messages)
    parsed = []
    for msg in messages:
        try:
            parsed.append(parse(msg.value or b""))
        except InvalidEvent:
            continue
    groups, _, _, _ = entity_updates(
        parsed, score_batch(parsed, reference), pseudonymizer, windowed=frozenset(thresholds)
    )
    out = [
        (f"{g.entity.entity_type}:{g.entity.key}", (g.entity.entity_type, u.mass_kg, u.event_time_ms))
        for g in groups
        for u in g.updates
        if u.mass_kg > 0  # a zero adds nothing to a sum (and no window can take it back later)
    ]
    seen["rows"] += len(out)
    return out


class _Tally(StatelessSinkPartition[Any]):
    def __init__(self, late: bool) -> None:
        self._late = late

    def write_batch(self, items: list[tuple[str, tuple[int, Any]]]) -> None:
        for key, (_window, value) in items:
            if self._late:  # a late row comes once for each window it was late for
                seen["late"].add((key, value))
            else:
                seen["over"] += 1
                seen["entities"].add(key)


class Tally(DynamicSink[Any]):
    """Counts what reaches it (Bytewax's own sinks print or write; a count is all this needs)."""

    def __init__(self, late: bool = False) -> None:
        self._late = late

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Tally:
        return _Tally(self._late)


def flow(bootstrap: str, topic: str) -> Dataflow:
    df = Dataflow("pw-peer-bytewax")
    messages = op.input("in", df, KafkaSource([bootstrap], [topic], tail=False, batch_size=1000))
    keyed = op.flat_map_batch("rows", messages, rows)
    clock = EventClock(
        lambda row: datetime.fromtimestamp(row[2] / 1000, tz=UTC),
        wait_for_system_duration=timedelta(hours=6),
    )
    windower = SlidingWindower(length=30 * DAY, offset=DAY, align_to=datetime(2020, 1, 1, tzinfo=UTC))
    sums = fold_window(
        "sums",
        keyed,
        clock,
        windower,
        lambda: ("", 0.0),
        lambda acc, row: (row[0], acc[1] + row[1]),
        lambda a, b: (a[0] or b[0], a[1] + b[1]),
    )
    over = op.filter("over", sums.down, lambda kv: kv[1][1][1] >= thresholds[kv[1][1][0]])
    op.output("tally-over", over, Tally())
    op.output("tally-late", sums.late, Tally(late=True))
    return df


if __name__ == "__main__":
    bootstrap_servers, topic_name, target = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run_main(flow(bootstrap_servers, topic_name))
    if seen["events"] < target:
        raise SystemExit(f"read {seen['events']} events, expected {target}")
    result = {
        "events": seen["events"],
        "seconds": time.perf_counter() - seen["first"],
        "crossings": seen["over"],
        "entities_over": len(seen["entities"]),
        "rows": seen["rows"],
        "late": len(seen["late"]),
    }
    print(orjson.dumps(result).decode(), flush=True)
