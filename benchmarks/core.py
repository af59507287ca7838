"""The core alone: scoring, linking, windows, judging and alerts against a real Redis, no Kafka.

    .venv/bin/python benchmarks/core.py [--events 200000] [--batch 1000]
Runs ``detectors.pipeline.prepare_batch`` and ``apply_batch`` over a simulated 60-day stream in
event-time order, in batches as the worker takes them, with every Redis step the worker does per batch: the window
store call (which judges what became final), the suspect parcels' details, the alert store and
the acknowledgement. Counts Redis round trips at the connection (a pipeline is one), and CPU
seconds of this process and of redis-server, so that events per second per core is the work of
both. Writes its table into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from tqdm import tqdm

from detectors.alert_store import RedisAlertStore
from detectors.entities import EntityRef, Pseudonymizer
from detectors.offline import parse_valid
from detectors.parcel_store import RedisParcelStore
from detectors.pipeline import Detector, apply_batch, prepare_batch
from detectors.reference import load_reference
from detectors.rules import load_rules
from detectors.store import ClockInput, PartitionReport
from detectors.store_sharded import ShardedWindowStore
from detectors.windows import WindowConfig
from streams.cli import tune_garbage_collection
from streams.servers import redis_server
from streams.settings import Settings
from streams.simulate import simulate

sys.path.insert(0, str(Path(__file__).parent))
from report import ROOT, provenance, write_result, write_section  # noqa: E402 - benchmarks are scripts, not a package


class CountingConnection(aioredis.Connection):
    """Counts what goes over the wire: one send per command, one per pipeline."""

    sends = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sends += 1
        await super().send_packed_command(command, check_health)


async def _info(client: Any, section: str) -> list[dict[str, Any]]:
    """INFO of one server, or of each primary of a cluster."""
    if isinstance(client, RedisCluster):
        return list((await client.info(section, target_nodes=RedisCluster.PRIMARIES)).values())
    return [await client.info(section)]


async def redis_cpu_per_server(client: Any) -> list[float]:
    return [float(i["used_cpu_user"]) + float(i["used_cpu_sys"]) for i in await _info(client, "cpu")]


async def redis_cpu_s(client: Any) -> float:
    return sum(await redis_cpu_per_server(client))


async def used_memory_per_server(client: Any) -> list[int]:
    return [int(i["used_memory"]) for i in await _info(client, "memory")]


async def memory_point(
    client: Any, windows: ShardedWindowStore, parcels: int, events: int, entities: int
) -> dict[str, Any]:
    """Redis used_memory at this point (each server's), with the entities tracked (windowed ones
    seen so far) and those holding window keys (a records hash each: only entities that some
    parcel counted for)."""
    held = 0
    for prefix in windows.prefixes:
        async for _ in client.scan_iter(match=f"{prefix}:{{*}}:r", count=10_000):
            held += 1
    per_server = await used_memory_per_server(client)
    return {
        "events": events,
        "parcels": parcels,
        "entities": entities,
        "entities_held": held,
        "used_memory": sum(per_server),
        "used_memory_per_server": per_server,
    }


async def parked_bytes(client: Any, windows: ShardedWindowStore) -> int:
    """What the parked strings (parcels that never counted, docs/windows.md) hold: used_memory before
    less after deleting them, at the end of the run. A lower bound: the key tables keep their size."""
    before = sum(await used_memory_per_server(client))
    for prefix in windows.prefixes:  # one hash slot per prefix: each chunk goes to one master
        keys = [key async for key in client.scan_iter(match=f"{prefix}:p:*", count=10_000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    return before - sum(await used_memory_per_server(client))


async def run(url: str, lines: list[bytes], batch: int, shards: int = 1, cluster: bool = False) -> dict[str, Any]:
    """The replay against the Redis at ``url`` (a cluster's node if ``cluster``), the window store in
    ``shards`` shards (docs/windows.md, "Sharding")."""
    events = sorted(parse_valid(lines), key=lambda e: e.event_time_ms)
    detector = Detector(
        load_reference(),
        load_rules(ROOT / "detectors" / "data" / "rules.toml"),
        Pseudonymizer(b"benchmark-secret-0123456789"),
    )
    client: Any
    if cluster:
        client = RedisCluster.from_url(url)
        await client.initialize()
        # from_url drops connection_class: count from the nodes' next connections on
        for node in client.get_nodes():
            await node.disconnect()
            node._connections.clear()
            node._free.clear()
            node.connection_class = CountingConnection
    else:
        client = aioredis.Redis(
            connection_pool=aioredis.ConnectionPool.from_url(url, connection_class=CountingConnection)
        )
    prefix = "{core}" if cluster else "core"
    config = WindowConfig.for_rules(detector.rules.longest_window_s)
    windows = ShardedWindowStore(client, config, prefix=prefix, shards=shards)
    alerts = RedisAlertStore(client, prefix=prefix)
    parcels = RedisParcelStore(client, prefix=prefix)
    await client.ping()
    baselines = await used_memory_per_server(client)
    baseline = sum(baselines)
    redis_cpu_start = await redis_cpu_per_server(client)
    # As the worker collects garbage, and with the replay's events parsed up front frozen out of
    # collections: a worker never holds more than a batch or two of them, this script holds them all,
    # and without this the collector's passes over them were counted as the pipeline's CPU.
    tune_garbage_collection(Settings.model_fields["gc_young_threshold"].default)
    checkpoints = {len(events) * q // 4 // batch for q in (1, 2, 3, 4)}
    seen: set[str] = set()
    # Windowed entities the stream names, whether the store ever sees them or not (events without
    # suspect mass go parcel-wide, naming none): named by a pseudonymizer of their own, outside the
    # timed span, so that the detector's caches meet what a worker's meet.
    tracked: set[EntityRef] = set()
    namer, windowed = Pseudonymizer(b"benchmark-secret-0123456789"), detector.rules.entity_types
    suspect = 0
    growth: list[dict[str, int]] = []
    paused_s = paused_cpu = paused_redis = 0.0
    redis_before, cpu_before = await redis_cpu_s(client), time.process_time()
    sends_before = CountingConnection.sends
    started = time.perf_counter()
    due: tuple[EntityRef, ...] = ()
    raised = 0
    chunks = [events[i : i + batch] for i in range(0, len(events), batch)]
    for number, chunk in enumerate(tqdm([*chunks, []], desc="core", unit="batch", file=sys.stderr), 1):
        seen.update(e.parcel_key for e in chunk)
        while True:
            # One partition, caught up after each batch: every window end up to the batch's last
            # event (less the lateness) is judged, as a worker keeping up with the stream does.
            clock = ClockInput(
                (PartitionReport(0, chunk[-1].event_time_ms if chunk else None, idle=True),),
                1,
                6 * 3600,
                due,
                int(time.time() * 1000),
            )
            prepared = prepare_batch(chunk, detector)
            outcome = await apply_batch(prepared, windows, clock)
            due = outcome.due
            if chunk:
                t0, c0 = time.perf_counter(), time.process_time()
                tracked.update(
                    ref for event in chunk for ref, _ in namer.entities(event) if ref.entity_type in windowed
                )
                paused_s += time.perf_counter() - t0
                paused_cpu += time.process_time() - c0
                suspect += sum(1 for score in prepared.scores if score.suspect_mass_kg > 0)
            if outcome.parcel_details:
                await parcels.save(outcome.parcel_details)
            if outcome.alerts:
                await alerts.save(outcome.alerts, int(time.time() * 1000))
                await windows.acknowledge(outcome.raised)
                raised += len(outcome.alerts)
            if chunk or not due:
                break
        if number in checkpoints:  # not timed: the SCAN is the benchmark's, not the worker's
            t0, c0, r0, s0 = (
                time.perf_counter(),
                time.process_time(),
                await redis_cpu_s(client),
                CountingConnection.sends,
            )
            growth.append(
                await memory_point(client, windows, len(seen), min(number * batch, len(events)), len(tracked))
            )
            paused_s += time.perf_counter() - t0
            paused_cpu += time.process_time() - c0
            paused_redis += await redis_cpu_s(client) - r0
            sends_before += CountingConnection.sends - s0
    seconds = time.perf_counter() - started - paused_s
    sends = CountingConnection.sends - sends_before
    cpu = time.process_time() - cpu_before - paused_cpu
    redis_cpu = await redis_cpu_s(client) - redis_before - paused_redis
    redis_cpu_each = [b - a for a, b in zip(redis_cpu_start, await redis_cpu_per_server(client), strict=True)]
    parked = await parked_bytes(client, windows)
    await client.aclose()
    return {
        "parked_bytes": parked,
        "redis_cpu_per_server": redis_cpu_each,  # the whole run's, the memory checkpoints' SCANs included
        "baselines": baselines,
        "events": len(events),
        "seconds": seconds,
        "round_trips": sends,
        "cpu_python": cpu,
        "cpu_redis": redis_cpu,
        "alerts": raised,
        "suspect_events": suspect,
        "baseline": baseline,
        "growth": growth,
    }


def simulated_lines(events: int) -> list[bytes]:
    """The first ``events`` lines of a simulated 60-day stream (seed 5) scaled to about that many."""
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "stream.jsonl"
        print(f"simulating about {events:,} events over 60 days...", file=sys.stderr)
        simulate(seed=5, days=60, out=stream, scale=events / 20_000)
        return stream.read_bytes().splitlines()[:events]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000, help="events per store call (the worker's default)")
    args = parser.parse_args()
    if args.events < 10_000:
        parser.error("--events: at least 10000, or start-up dominates")
    lines = simulated_lines(args.events)
    with redis_server() as server:
        r = asyncio.run(run(server.url, lines, args.batch))
    n = r["events"]
    command = f"python benchmarks/core.py --events {args.events} --batch {args.batch}"
    cores = r["cpu_python"] + r["cpu_redis"]
    last = r["growth"][-1]
    write_section(
        "Core alone: scoring and windows against Redis, no Kafka",
        [
            provenance(command),
            f"{n:,} valid events of a simulated 60-day stream (seed 5) in event-time order, {args.batch} per batch;"
            " per batch: the window store call (judging included), parcel details, alert store, acknowledgement."
            " Garbage collection as in the worker (`PARCELWATCH_GC_YOUNG_THRESHOLD`), with the parsed replay"
            " frozen out of it (a worker holds a batch or two of events, not the whole replay).",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| events/s (wall) | {n / r['seconds']:,.0f} |",
            f"| CPU seconds, Python | {r['cpu_python']:.2f} |",
            f"| CPU seconds, redis-server | {r['cpu_redis']:.2f} |",
            f"| events/s per core (events / CPU seconds of both) | {n / cores:,.0f} |",
            f"| Redis round trips | {r['round_trips']:,} |",
            f"| Redis round trips per event | {r['round_trips'] / n:.4f} |",
            f"| alerts raised | {r['alerts']:,} |",
            f"| events with suspect mass | {r['suspect_events']:,} ({r['suspect_events'] / n:.2%}) |",
            "",
            "Target: <= 0.02 round trips per event.",
            "",
            "Redis memory as the replay goes (used_memory less the empty server's; entities: those of each type a"
            " rule judges that the stream has named so far; held: those with window keys, that some parcel counted"
            " for, clusters included; the others have no key of their own, and their parcels are parked,"
            " docs/windows.md):",
            "",
            "| events | parcels | entities | held | Redis bytes | bytes per entity | bytes per parcel |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            *[
                f"| {g['events']:,} | {g['parcels']:,} | {g['entities']:,} | {g['entities_held']:,} |"
                f" {g['used_memory'] - r['baseline']:,} |"
                f" {(g['used_memory'] - r['baseline']) / max(g['entities'], 1):,.0f} |"
                f" {(g['used_memory'] - r['baseline']) / max(g['parcels'], 1):,.0f} |"
                for g in r["growth"]
            ],
            "",
            "Bytes per entity include everything the run keeps in Redis: window records, parked records, the"
            " cluster map, suspect parcels' details and the alert store. Target: <= 1 KB per entity on average.",
            "",
            f"Of the last row's bytes, the parked strings (parcels that never counted, one string each) held"
            f" {r['parked_bytes']:,}: {r['parked_bytes'] / last['parcels']:,.0f} bytes per parcel,"
            f" {r['parked_bytes'] / (last['used_memory'] - r['baseline']):.0%} of the total (used_memory before and"
            " after deleting them at the end of the run; the key tables keep their size, so a lower bound).",
        ],
    )
    figures = {
        "events": n,
        "core_eps": round(n / r["seconds"]),
        "eps_per_core": round(n / cores),
        "redis_eps_per_core": round(n / r["cpu_redis"]),
        "round_trips_per_event": r["round_trips"] / n,
        "events_per_parcel": last["events"] / last["parcels"],
        "entities_per_parcel": last["entities"] / last["parcels"],
        "redis_bytes_per_parcel": (last["used_memory"] - r["baseline"]) / last["parcels"],
        "parked_bytes_per_parcel": r["parked_bytes"] / last["parcels"],
        "redis_bytes_per_entity": (last["used_memory"] - r["baseline"]) / last["entities"],
        "entities_held_per_parcel": last["entities_held"] / last["parcels"],
        "suspect_event_share": r["suspect_events"] / n,
    }
    write_result("core", figures, command)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
