"""Where a detector batch spends its time, stage by stage, on the throughput ladder's stream (no Kafka).

    .venv/bin/python benchmarks/core_stages.py [--events 200000]

The stream is benchmarks/throughput.py's, repeated as the ladder repeats it (new ids, later times,
new recipients: the pseudonymizer's caches meet what a worker meets), and garbage is collected as
in the worker. Each stage runs over the same events in one process, side by side; the validation
stage runs both the compiled validator (used) and jsonschema (the reference, used only for
messages). The worker's own stages (one pass, score, link, the store's request) are then summed:
what one process could read if Faust, Kafka and Redis cost nothing. The Redis stage applies
1000-event batches through the real Lua store on its own redis-server. Writes its table into
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from detectors import validation
from detectors.entities import Pseudonymizer
from detectors.errors import InvalidEvent
from detectors.pipeline import Detector, entity_updates
from detectors.reference import load_reference
from detectors.rules import load_rules
from detectors.scoring import score_batch
from detectors.store import ClockInput, PartitionReport
from detectors.store_redis import RedisWindowStore
from detectors.windows import ParcelUpdate, WindowConfig
from streams.cli import tune_garbage_collection
from streams.servers import redis_server
from streams.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))
from report import ROOT, provenance, write_section  # noqa: E402 - benchmarks are scripts, not a package
from soak import copies  # noqa: E402
from throughput import ladder_lines  # noqa: E402


def timed(run: Callable[[], Any]) -> tuple[Any, float]:
    """``run()`` and its seconds. What the benchmark holds so far is frozen out of the collector's
    passes first: a worker holds a batch or two of events, not the whole replay (as in core.py)."""
    gc.freeze()
    started = time.perf_counter()
    result = run()
    return result, time.perf_counter() - started


def kept(stage: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """``stage`` over ``items``, keeping the results of those it accepts (as the worker does)."""
    out = []
    for item in items:
        try:
            out.append(stage(item))
        except InvalidEvent:
            continue
    return out


def worker_stages(lines: list[bytes], detector: Detector) -> dict[str, float]:
    """Seconds of each of the worker's own stages, batch by batch as the worker runs them: 1000
    records parsed, scored, linked (its pseudonymizer starting empty, as a worker's does; events
    without suspect mass go parcel-wide, as ``prepare_batch`` sends them) and encoded as the store's
    request; each batch's results dropped before the next."""
    spent = dict.fromkeys(("parse", "score", "link", "request"), 0.0)
    # prepare encodes without a server: the client is never connected
    request = RedisWindowStore(aioredis.Redis(), WindowConfig.for_rules(detector.rules.longest_window_s)).prepare
    windowed = detector.rules.entity_types
    gc.freeze()
    clock = time.perf_counter
    for lo in range(0, len(lines), 1000):
        t0 = clock()
        events = kept(validation.parse, lines[lo : lo + 1000])
        t1 = clock()
        scores = score_batch(events, detector.reference)
        t2 = clock()
        parcels: list[ParcelUpdate] = []
        groups, _, links, _ = entity_updates(events, scores, detector.pseudonymizer, windowed=windowed, parcels=parcels)
        t3 = clock()
        request(groups, links, parcels)
        t4 = clock()
        for stage, seconds in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            spent[stage] += seconds
    return spent


def fresh_detector() -> Detector:
    return Detector(
        load_reference(),
        load_rules(ROOT / "detectors" / "data" / "rules.toml"),
        Pseudonymizer(b"benchmark-secret-0123456789"),
    )


def stage_split(lines: list[bytes]) -> dict[str, float]:
    """Seconds of each of the worker's stages: the faster of two runs, each with empty caches."""
    runs = [worker_stages(lines, fresh_detector()) for _ in range(2)]
    return min(runs, key=lambda stages: sum(stages.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--split-only",
        action="store_true",
        help="time only the worker's stages, print them as one JSON line (us an event),"
        " write nothing: benchmarks/throughput.py's split of a worker's cost",
    )
    args = parser.parse_args()
    if args.events < 10_000:
        parser.error("--events: at least 10000, or the caches' start dominates")
    with tempfile.TemporaryDirectory() as tmp:
        lines = [value for _, value in copies(ladder_lines(Path(tmp)), args.events)]
    tune_garbage_collection(Settings.model_fields["gc_young_threshold"].default)
    if args.split_only:
        us = {stage: s / len(lines) * 1e6 for stage, s in stage_split(lines).items()}
        print(json.dumps({"events": len(lines), "today": us}))
        return

    records, t_decode = timed(lambda: kept(validation.decode, lines))

    def compiled() -> int:
        ok = 0
        for record in records:
            try:
                validation._FAST(record)
                ok += 1
            except Exception:  # noqa: S112 - counting rejections is the point
                continue
        return ok

    def reference() -> int:
        return sum(1 for record in records if validation._VALIDATOR.is_valid(record))

    ok_fast, t_fast = timed(compiled)
    ok_ref, t_ref = timed(reference)
    assert ok_fast == ok_ref, "the two validators disagree"

    events, t_build = timed(lambda: kept(validation.to_event, records))
    # The worker's way: one pass over the bytes (detectors/wire.py), the schema's way for what it refuses.
    parsed, t_parse = timed(lambda: kept(validation.parse, lines))
    assert parsed == events, "the one-pass parse and the schema's way disagree"

    # what the first stages hold, dropped before the worker's stages run
    n_records = len(records)
    records.clear()
    parsed.clear()
    events.clear()
    spent = stage_split(lines)
    detector = fresh_detector()
    t_parse_batches, t_score, t_entities, t_request = (spent[k] for k in ("parse", "score", "link", "request"))
    events = kept(validation.parse, lines)
    scores = score_batch(events, detector.reference)
    linked_batches = []
    for lo in range(0, len(events), 1000):
        parcels: list[ParcelUpdate] = []
        groups, _, links, _ = entity_updates(
            events[lo : lo + 1000],
            scores[lo : lo + 1000],
            detector.pseudonymizer,
            windowed=detector.rules.entity_types,
            parcels=parcels,
        )
        linked_batches.append((groups, links, parcels))

    async def apply(url: str) -> float:
        client = aioredis.from_url(url)
        store = RedisWindowStore(client, WindowConfig.for_rules(detector.rules.longest_window_s))
        clock = ClockInput((PartitionReport(0, None, idle=False),), 1, 6 * 3600)
        started = time.perf_counter()
        for groups, links, parcels in linked_batches:
            await store.apply(groups, detector.rules, clock, links, parcels=parcels)
        elapsed = time.perf_counter() - started
        await client.aclose()
        return elapsed

    with redis_server() as server:
        t_redis = asyncio.run(apply(server.url))
    n = len(events)
    rows = [
        ("the schema's way, 1: decode JSON (orjson)", len(lines), t_decode),
        ("the schema's way, 2: validate, compiled (fastjsonschema)", n_records, t_fast),
        ("the schema's way, 2 by jsonschema (the reference, for messages only)", n_records, t_ref),
        ("the schema's way, 3: validate again and build frozen events, parse times", n_records, t_build),
        ("one pass (msgspec, detectors/wire.py): decode, check, build; used", len(lines), t_parse),
        ("the worker's stages, batch by batch: 1. one pass", len(lines), t_parse_batches),
        ("2. score (numpy over the batch)", n, t_score),
        (
            "3. link entities (normalise + HMAC), the types the worker's rules window, for events with suspect"
            " mass and cancellations (the rest go parcel-wide)",
            n,
            t_entities,
        ),
        ("4. the store's request (rows and entities encoded)", n, t_request),
        ("1 to 4 together", n, own := t_parse_batches + t_score + t_entities + t_request),
        ("Redis store: one Lua call per 1000 events (request encoding included)", n, t_redis),
    ]
    write_section(
        "Core stages, events per second (one process, no Kafka)",
        [
            provenance(f"python benchmarks/core_stages.py --events {args.events}"),
            f"{n:,} valid events of benchmarks/throughput.py's stream, repeated as the ladder repeats it; each"
            " stage over the same events, in one run; garbage collected as in the worker.",
            "",
            "| stage | events | seconds | events/s |",
            "|---|---:|---:|---:|",
            *[f"| {name} | {count} | {seconds:.3f} | {count / seconds:,.0f} |" for name, count, seconds in rows],
            "",
            f"Compiled validation is {t_ref / t_fast:.1f}x the reference validator's speed on the same records."
            f" The one pass takes {t_parse / (t_decode + t_build):.2f} of the time of the schema's way (steps 1 and"
            " 3; step 3 validates as `validation.to_event` does), and built the same events. The worker parses"
            " each record the one-pass way; what that refuses goes the schema's way, which names the problem.",
            "",
            f"The worker's own stages (1 to 4) take {own / n * 1e6:.1f} us an event together: one process could read"
            f" at most {n / own:,.0f} events/s if its consumer, Faust, the Redis client and the broker cost it nothing"
            " (the throughput ladder measures the whole worker). Of that, linking is"
            f" {t_entities / own:.0%}, the one pass {t_parse_batches / own:.0%}, scoring {t_score / own:.0%} and"
            f" the request {t_request / own:.0%}. The first one-pass row parses the whole replay at once, beside"
            " the schema's way; batch by batch, as the worker parses, the memory it touches is a batch's."
            " Rows 1 to 4 are the faster of two runs.",
        ],
    )


if __name__ == "__main__":
    main()
