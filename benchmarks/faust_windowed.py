"""A peer: the windowed job written with Faust's own windowed tables (hopping windows, changelog).

    python benchmarks/faust_windowed.py BROKER_URL TOPIC GROUP N

Batches as the pipeline takes them, the same validation, scoring and entities; then, per
windowed entity update, ``table[entity] += suspect mass`` in a 30-day window hopping by a day
(a sliding window approximated by 30 overlapping ones), each relative to the event's time, and
the sum of the oldest window holding the event (the trailing 29-30 days) read against the rule's
threshold. Prints one JSON line (events, seconds
from the first event to the N-th, crossings) and exits. One worker: with several, the entity
updates would first go through ``group_by`` (a repartition topic), which is not measured here.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from faust_bench_app import bench_app, report_and_exit, run  # noqa: E402 - a sibling script

from detectors.entities import Pseudonymizer
from detectors.errors import InvalidEvent
from detectors.pipeline import entity_updates
from detectors.reference import load_reference
from detectors.rules import load_rules
from detectors.scoring import score_batch
from detectors.validation import parse

DAY_S = 86_400
app, topic, target = bench_app("faust-windowed")
now = {"t": 0.0}
sums = (
    # use_partitioner: a batch (take_events) has no current event to take the partition from, and
    # the key is the entity, not the parcel the input is partitioned by.
    app.Table("pw-peer-sums", default=float, partitions=8, use_partitioner=True)
    .hopping(size=30 * DAY_S, step=DAY_S, expires=60 * DAY_S)
    .relative_to(lambda _event: now["t"])
)
reference = load_reference()
rules = load_rules(Path(__file__).parents[1] / "detectors" / "data" / "rules.toml")
thresholds = {rule.entity_type: rule.threshold_kg for rule in rules.rules if rule.window_s == 30 * DAY_S}
pseudonymizer = Pseudonymizer(b"benchmark-secret-0123456789")
seen: dict[str, Any] = {"n": 0, "first": 0.0, "crossings": 0}


@app.agent(topic)
async def windowed(stream):  # type: ignore[no-untyped-def]
    try:
        await judge(stream)
    except Exception as exc:  # noqa: BLE001 - a crashed agent would leave the benchmark waiting
        print(f"faust_windowed failed: {exc!r}\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        os._exit(1)


async def judge(stream: Any) -> None:
    async for events in stream.take_events(1000, within=0.2):
        if seen["n"] == 0:
            seen["first"] = time.perf_counter()
        parsed = []
        for event in events:
            try:
                parsed.append(parse(bytes(event.value)))
            except InvalidEvent:
                continue
        scores = score_batch(parsed, reference)
        groups, _, _, _ = entity_updates(parsed, scores, pseudonymizer, windowed=frozenset(thresholds))
        for group_ in groups:
            key = f"{group_.entity.entity_type}:{group_.entity.key}"
            for update in group_.updates:
                if update.mass_kg <= 0:
                    continue  # a zero adds nothing to a sum (and no table can take it back later)
                now["t"] = update.event_time_ms / 1000
                sums[key] += update.mass_kg
                # The trailing 30 days are best approximated by the window with the earliest start
                # that holds the event; WindowSet.value() reads the latest-starting one (a day).
                oldest = sums.table.window.ranges(now["t"])[0]
                if sums.table._get_key((key, oldest)) >= thresholds[group_.entity.entity_type]:
                    seen["crossings"] += 1
        seen["n"] += len(events)
        if seen["n"] >= target:
            report_and_exit(
                {
                    "events": seen["n"],
                    "seconds": time.perf_counter() - seen["first"],
                    "crossings": seen["crossings"],
                }
            )


if __name__ == "__main__":
    run(app)
