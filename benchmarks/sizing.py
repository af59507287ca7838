"""What national volume needs, derived from the measured per-unit figures only.

    .venv/bin/python benchmarks/sizing.py [--events-per-parcel 4]
Reads benchmarks/results/throughput.json and benchmarks/results/core.json (written by
benchmarks/throughput.py and benchmarks/core.py) and writes the "Sizing" section of BENCHMARKS.md
with its arithmetic. The volumes are China's express parcels of 2025 (../shared/DOMAIN.md):
545 million a day on average, 777 million on the peak day. Events per parcel: DOMAIN.md names four
(declared, picked up, scanned, exported); the simulated streams have fewer, and the figure is a
flag.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from report import provenance, read_result, write_section  # noqa: E402 - benchmarks are scripts, not a package

AVERAGE_PARCELS_PER_DAY = 545_000_000
PEAK_PARCELS_PER_DAY = 777_000_000
RETENTION_DAYS = 60  # the longest shipped window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-per-parcel", type=float, default=4.0)
    args = parser.parse_args()
    throughput, core = read_result("throughput"), read_result("core")
    epp = args.events_per_parcel
    worker_eps = throughput["pipeline_eps"]
    redis_eps = core["redis_eps_per_core"]
    bytes_per_parcel = core["redis_bytes_per_parcel"]

    rows = []
    for label, parcels in (("average day", AVERAGE_PARCELS_PER_DAY), ("peak day", PEAK_PARCELS_PER_DAY)):
        eps = parcels * epp / 86_400
        workers = math.ceil(eps / worker_eps)
        shards = math.ceil(eps / redis_eps)
        rows.append(
            f"| {label} | {parcels:,} x {epp:g} / 86,400 = {eps:,.0f} | {eps:,.0f} / {worker_eps:,} = {workers:,} |"
            f" {workers:,} -> {2 ** math.ceil(math.log2(workers)):,} | {eps:,.0f} / {redis_eps:,} = {shards:,} |"
        )
    retained = AVERAGE_PARCELS_PER_DAY * RETENTION_DAYS
    memory_tb = retained * bytes_per_parcel / 1e12
    body = [
        provenance(f"python benchmarks/sizing.py --events-per-parcel {epp:g}"),
        "",
        f"From `{throughput['command']}` ({throughput['measured']}): one worker, full pipeline, "
        f"{worker_eps:,} events/s. From `{core['command']}` ({core['measured']}): the window store's "
        f"script, {redis_eps:,} events per second of redis-server CPU (one Redis shard runs on one core); "
        f"{bytes_per_parcel:,.0f} bytes of Redis per parcel retained "
        f"({core['entities_per_parcel']:.2f} windowed entities per parcel, "
        f"{core['redis_bytes_per_entity']:,.0f} bytes per entity).",
        "",
        "| volume | events/s | workers | partitions (power of two >= workers) | Redis shards (CPU) |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Redis memory: {AVERAGE_PARCELS_PER_DAY:,} parcels a day x {RETENTION_DAYS} days retained x "
        f"{bytes_per_parcel:,.0f} bytes = {memory_tb:,.1f} TB.",
        "",
        "Not covered: hours busier than the peak day's average, replicas, headroom for catching up after"
        " an outage. A deployment's window state lives in one hash slot, on one master (docs/windows.md):"
        " the shards are deployments (split by courier or region, each its own prefix and consumer group),"
        " and identity clusters do not link across them; the memory assumes every parcel keeps its state"
        " (a parked string, or records in its entities once it counted) for the whole retention, as the"
        " store does.",
        "",
        f"The worker figure ({worker_eps:,} events/s) was measured with the worker sharing this machine's cores"
        f" with Redis and the broker. The memory row, {memory_tb:,.1f} TB, is"
        f" {memory_tb * 1e12 / (24 * 2**30):,.0f} machines of this one's 24 GiB.",
    ]
    write_section("Sizing", body)


if __name__ == "__main__":
    main()
