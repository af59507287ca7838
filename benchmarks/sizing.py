"""What national volume needs, derived from the measured per-unit figures only.

    .venv/bin/python benchmarks/sizing.py [--events-per-parcel 4] [--master-gib 24] [--fill 0.75]
        [--parked-days 30] [--mixed-machines]

Reads benchmarks/results/throughput.json, core.json and shards.json (written by
benchmarks/throughput.py, core.py and shards.py) and writes the "Sizing" section of BENCHMARKS.md
with its arithmetic. The three must have been measured on one machine (the boot each result
records): the machines these benchmarks run on have differed by about two times in speed, and a
worker figure from one beside a Redis figure from another sizes neither. It refuses to mix them
unless told to (--mixed-machines), and then says so in the section. A Redis master's memory is an
assumption, not a measurement: by default this machine's 24 GiB, filled to 75% (the rest for
fragmentation, replication and the fork of a save). The volumes are China's express parcels of
2025 (../shared/DOMAIN.md): 545 million a day on average, 777 million on the peak day. Events per
parcel: DOMAIN.md names four (declared, picked up, scanned, exported); the simulated streams have
fewer, and the figure is a flag.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from report import boots, provenance, read_result, require_one_machine, write_section  # noqa: E402 - benchmarks are scripts, not a package

AVERAGE_PARCELS_PER_DAY = 545_000_000
PEAK_PARCELS_PER_DAY = 777_000_000
RETENTION_DAYS = 60  # the longest shipped window


def ladder_redis(throughput: dict[str, Any], redis_eps: int) -> list[str]:
    """The ladder's own reading of redis-server's CPU beside core.py's, where the ladder recorded it."""
    us = throughput.get("pipeline_redis_cpu_us_per_event")
    if us is None:
        return []
    return [
        "",
        f"Beside it, the ladder's pipeline run spent {us:,.1f} us of redis-server CPU an event"
        f" ({1e6 / us:,.0f} events per Redis core), against core.py's {1e6 / redis_eps:,.1f} us. The two replay"
        " different streams through different intakes (their commands above); sizing uses core.py's, whose"
        " replay spans the 60 days of the longest window.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-per-parcel", type=float, default=4.0)
    parser.add_argument("--master-gib", type=float, default=24.0, help="memory of one Redis master, GiB")
    parser.add_argument("--fill", type=float, default=0.75, help="share of a master's memory the data may use")
    parser.add_argument(
        "--parked-days",
        type=float,
        default=30.0,
        help="a shorter life for parcels that never counted (PARCELWATCH_PARKED_TTL), for the last figure",
    )
    parser.add_argument(
        "--mixed-machines",
        action="store_true",
        help="derive even when the three results were measured on different machines (the section says so)",
    )
    args = parser.parse_args()
    throughput, core, sharded = read_result("throughput"), read_result("core"), read_result("shards")
    sources = {"throughput.py": throughput, "core.py": core, "shards.py": sharded}
    machines = require_one_machine("sizing.py", sources, args.mixed_machines)
    epp = args.events_per_parcel
    worker_eps = throughput["pipeline_eps"]
    redis_eps = core["redis_eps_per_core"]
    bytes_per_parcel = core["redis_bytes_per_parcel"]
    # A parcel whose entities fall in several shards is parked once in each: the most shards measured
    # give the bytes per parcel of a store spread over many.
    most = max(sharded["by_shards"], key=int)
    sharded_bytes = sharded["by_shards"][most]["bytes_per_parcel"]
    sharded_parked = sharded["by_shards"][most]["parked_bytes_per_parcel"]
    usable = args.master_gib * 2**30 * args.fill

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
    sharded_tb = retained * sharded_bytes / 1e12
    masters = math.ceil(sharded_tb * 1e12 / usable)
    days = args.parked_days
    short_tb = (
        AVERAGE_PARCELS_PER_DAY * (RETENTION_DAYS * (sharded_bytes - sharded_parked) + days * sharded_parked) / 1e12
    )
    short_masters = math.ceil(short_tb * 1e12 / usable)
    body = [
        provenance(
            f"python benchmarks/sizing.py --events-per-parcel {epp:g} --master-gib {args.master_gib:g}"
            f" --fill {args.fill:g} --parked-days {days:g}" + (" --mixed-machines" if args.mixed_machines else "")
        ),
        "",
        (
            f"All three sources were measured on one machine, boot {machines}."
            if machines is not None
            else f"**Mixed machines** (`--mixed-machines`): {boots(sources)}. The machines here have differed"
            " by about two times in speed, so the worker and Redis counts below mix two speeds."
        ),
        "",
        f"From `{throughput['command']}` ({throughput['measured']}): one worker, full pipeline, "
        f"{worker_eps:,} events/s. From `{core['command']}` ({core['measured']}): the window store's "
        f"script, {redis_eps:,} events per second of redis-server CPU (a Redis master runs on one core); "
        f"{bytes_per_parcel:,.0f} bytes of Redis per parcel retained "
        f"({core['entities_per_parcel']:.2f} windowed entities per parcel, "
        f"{core['redis_bytes_per_entity']:,.0f} bytes per entity).",
        *ladder_redis(throughput, redis_eps),
        "",
        "| volume | events/s | workers | partitions (power of two >= workers) | Redis masters (CPU) |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Redis memory, one slot: {AVERAGE_PARCELS_PER_DAY:,} parcels a day x {RETENTION_DAYS} days retained x "
        f"{bytes_per_parcel:,.0f} bytes = {memory_tb:,.1f} TB.",
        "",
        f"Sharded (`PARCELWATCH_REDIS_SHARDS`, docs/windows.md): from `{sharded['command']}`"
        f" ({sharded['measured']}), {sharded_bytes:,.0f} bytes per parcel with {most} shards (a parcel's"
        " parcel-wide record is kept in its home shard; one that counted for entities of several shards is"
        f" parked in each of those as well). {retained:,} parcels x {sharded_bytes:,.0f} bytes"
        f" = {sharded_tb:,.1f} TB; a master of {args.master_gib:g} GiB filled to {args.fill:.0%} holds"
        f" {usable / 1e9:,.1f} GB, so {sharded_tb * 1e12:,.0f} / {usable:,.0f} = **{masters:,} masters** (one shard"
        f" each), against {max(math.ceil(PEAK_PARCELS_PER_DAY * epp / 86_400 / redis_eps), 1):,} for the peak"
        " day's Redis CPU: memory decides.",
        "",
        f"Each store call goes to every shard, after a call to each parcel's home shard: up to 2 x {masters:,}"
        f" = {2 * masters:,} script calls per batch. Keeping the target of 0.02 round trips per event takes"
        f" batches of {2 * masters:,} / 0.02 = {math.ceil(2 * masters / 0.02):,} events"
        " (`PARCELWATCH_BATCH_SIZE`), and every shard's call carries the rules and the clock: at this many"
        " shards the per-call cost, not the events, would bound the worker. So the practical ways to the"
        f" national figure are fewer, larger masters (at 256 GiB, filled to {args.fill:.0%},"
        f" {math.ceil(sharded_tb * 1e12 / (256 * 2**30 * args.fill)):,} masters) or a shorter life for parked parcels"
        " (docs/windows.md: a parcel's record is kept for the whole retention even when it never counted).",
        "",
        f"A shorter life for parked parcels (`PARCELWATCH_PARKED_TTL`; the default keeps them the whole"
        f" retention): of the {sharded_bytes:,.0f} bytes per parcel with {most} shards, the parked strings hold"
        f" {sharded_parked:,.0f} (shards.py deletes them at the end of each run and reads what that frees). Kept"
        f" {days:g} days after a parcel's last event instead of {RETENTION_DAYS}: {AVERAGE_PARCELS_PER_DAY:,} x"
        f" ({RETENTION_DAYS} x {sharded_bytes - sharded_parked:,.0f} + {days:g} x {sharded_parked:,.0f}) bytes ="
        f" {short_tb:,.1f} TB, **{short_masters:,} masters** of {args.master_gib:g} GiB. {days:g} days is an"
        " assumption, not a measurement: a parcel whose next event comes later than that starts afresh"
        " (docs/windows.md says what it loses); choosing it is the deployment's call.",
        "",
        "Not covered: hours busier than the peak day's average, replicas, headroom for catching up after"
        " an outage. Identity clusters live in shard 0 and the alert store under the deployment's prefix: the"
        " shards.py table gives the fullest master's share of memory. The memory assumes every parcel keeps its"
        " state (a parked string, or records in its entities once it counted) for the whole retention, as the"
        " store does by default (the paragraph above: a shorter parked life).",
        "",
        f"The worker figure ({worker_eps:,} events/s) was measured with the worker sharing this machine's cores"
        f" with Redis and the broker. The one-slot memory, {memory_tb:,.1f} TB, is"
        f" {memory_tb * 1e12 / (24 * 2**30):,.0f} machines of this one's 24 GiB.",
    ]
    write_section("Sizing", body)


if __name__ == "__main__":
    main()
