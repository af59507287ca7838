"""The window store sharded over a Redis Cluster's masters, side by side with one slot.

    .venv/bin/python benchmarks/shards.py [--events 400000] [--masters 3] [--shards 1,3,6,24] [--rounds 2]
Runs benchmarks/core.py's replay (scoring, linking, windows, judging, alerts; no Kafka) against a
fresh local Redis Cluster of ``--masters`` masters for each shard count (PARCELWATCH_REDIS_SHARDS),
rounds alternating the order, and reports for each: events/s, CPU of the replay and of each
master, Redis memory per parcel and on the fullest master, round trips per event and the alerts
(which must be the same for every count). Writes its table into BENCHMARKS.md and
benchmarks/results/shards.json (read by benchmarks/sizing.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from core import run, simulated_lines  # noqa: E402 - benchmarks are scripts, not a package
from report import provenance, write_result, write_section  # noqa: E402

from streams.servers import redis_cluster  # noqa: E402


def figures(shards: int, r: dict[str, Any]) -> dict[str, Any]:
    n = r["events"]
    last = r["growth"][-1]
    used = [u - b for u, b in zip(last["used_memory_per_server"], r["baselines"], strict=True)]
    return {
        "shards": shards,
        "events_per_s": n / r["seconds"],
        "python_us_per_event": r["cpu_python"] / n * 1e6,
        "redis_us_per_event": r["cpu_redis"] / n * 1e6,
        "busiest_master_cpu_share": max(r["redis_cpu_per_server"]) / sum(r["redis_cpu_per_server"]),
        "bytes_per_parcel": sum(used) / last["parcels"],
        "parked_bytes_per_parcel": r["parked_bytes"] / last["parcels"],
        "fullest_master_share": max(used) / sum(used),
        "round_trips_per_event": r["round_trips"] / n,
        "alerts": r["alerts"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--masters", type=int, default=3)
    parser.add_argument("--shards", default="1,3,6,24", help="shard counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=2, help="each count this many times, the order alternating")
    args = parser.parse_args()
    counts = [int(c) for c in args.shards.split(",")]
    if args.events < 10_000:
        parser.error("--events: at least 10000, or start-up dominates")
    lines = simulated_lines(args.events)
    runs: list[dict[str, Any]] = []
    for round_ in range(args.rounds):
        for shards in counts if round_ % 2 == 0 else counts[::-1]:
            print(f"round {round_ + 1}: {shards} shard(s) on {args.masters} masters", file=sys.stderr)
            with redis_cluster(masters=args.masters) as node:
                runs.append(figures(shards, asyncio.run(run(node.url, lines, args.batch, shards, cluster=True))))
    alerts = {r["alerts"] for r in runs}
    command = (
        f"python benchmarks/shards.py --events {args.events} --masters {args.masters}"
        f" --shards {args.shards} --rounds {args.rounds}"
    )
    rows = [
        f"| {r['shards']} | {r['events_per_s']:,.0f} | {r['python_us_per_event']:.1f} | {r['redis_us_per_event']:.1f} |"
        f" {r['busiest_master_cpu_share']:.0%} | {r['bytes_per_parcel']:,.0f} | {r['parked_bytes_per_parcel']:,.0f} |"
        f" {r['fullest_master_share']:.0%} |"
        f" {r['round_trips_per_event']:.4f} | {r['alerts']:,} |"
        for r in runs
    ]
    write_section(
        "Sharding: one deployment's windows over a Redis Cluster's masters",
        [
            provenance(command),
            f"benchmarks/core.py's replay ({len(lines):,} lines of a simulated 60-day stream, seed 5, batches of"
            f" {args.batch}) against a fresh {args.masters}-master Redis Cluster on this machine for each run,"
            " the window store in 1 or more shards (`PARCELWATCH_REDIS_SHARDS`, docs/windows.md); rounds"
            " alternate the order. Redis CPU: all masters together, and the busiest one's share (the memory"
            " checkpoints' scans included). Memory: used_memory of all masters less their empty start, per parcel"
            " seen, and the fullest master's share; of those bytes, the parked strings' (parcels that never counted:"
            " used_memory before and after deleting them at the end of the run, a lower bound).",
            "",
            "| shards | events/s | Python µs/event | Redis µs/event | busiest master's CPU | bytes/parcel |"
            " parked bytes/parcel | fullest master | round trips/event | alerts |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            (
                "Every run raised the same alerts."
                if len(alerts) == 1
                else f"ALERTS DIFFER between runs: {sorted(alerts)}."
            )
            + f" One master's even share is {1 / args.masters:.0%}.",
        ],
    )
    by_count: dict[int, list[dict[str, Any]]] = {}
    for r in runs:
        by_count.setdefault(r["shards"], []).append(r)
    summary = {
        str(count): {key: sum(r[key] for r in rs) / len(rs) for key in rs[0] if key not in ("shards", "alerts")}
        for count, rs in by_count.items()
    }
    write_result("shards", {"masters": args.masters, "by_shards": summary, "same_alerts": len(alerts) == 1}, command)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
