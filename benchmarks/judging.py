"""Judging busy entities: Redis CPU per event over a live-like run, this store against an earlier one.

    .venv/bin/python benchmarks/judging.py [--events 400000] [--rate 4542] [--stretch 50000]
                                           [--against 920bcc0]

A live stream keeps its entities busy: in the latency benchmark every event falls inside every
window, so a sender's or a cluster's windows hold more records at each call. This replays that
stream without Kafka (the last event per parcel of a simulated stream, repeated under new ids, as
benchmarks/latency.py publishes it) with event times advancing at ``--rate`` per second, in batches
of 1000, one partition, never idle, lateness 1 s: each call judges the ends that became final, as a
live worker keeping up does. For each stretch of ``--stretch`` events it reports the redis-server CPU
per event. ``--against REV`` runs the same replay on a fresh server with the window script of
revision REV (``git show REV:detectors/store_redis.lua``; the Python side is this checkout's) and
checks that both raise the same alerts. Writes its table into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from tqdm import tqdm

import detectors.store_redis as store_redis
from detectors.entities import Pseudonymizer
from detectors.offline import parse_valid
from detectors.pipeline import Detector, apply_batch, prepare_batch
from detectors.reference import load_reference
from detectors.rules import load_rules
from detectors.store import ClockInput, PartitionReport
from detectors.store_sharded import ShardedWindowStore
from detectors.windows import WindowConfig
from streams.servers import redis_server
from streams.simulate import simulate

sys.path.insert(0, str(Path(__file__).parent))
from core import redis_cpu_s  # noqa: E402 - benchmarks are scripts, not a package
from latency import last_event_per_parcel  # noqa: E402
from report import ROOT, provenance, write_section  # noqa: E402

BATCH = 1000
LATENESS_S = 1


def live_stream(events: int, rate: float) -> list[bytes]:
    """``events`` lines as benchmarks/latency.py publishes them, event times ``rate`` per second apart."""
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "stream.jsonl"
        print("simulating the latency benchmark's stream (seed 43, 60 days, scale 4)...", file=sys.stderr)
        simulate(seed=43, days=60, out=stream, scale=4.0)
        parcels = last_event_per_parcel(stream.read_bytes().splitlines())
    start_ms = 1_790_000_000_000
    lines = []
    for i in range(events):
        event = dict(parcels[i % len(parcels)])
        if i >= len(parcels):
            event["parcel_id"] = f"{event['parcel_id']}~{i // len(parcels)}"
            event["event_id"] = f"{event['event_id']}~{i // len(parcels)}"
        event["event_time"] = start_ms + int(i * 1000 / rate)
        lines.append(orjson.dumps(event))
    return lines


async def replay(url: str, lines: list[bytes], stretch: int, script: str) -> dict[str, Any]:
    """Redis CPU seconds per stretch and the alerts raised (id, rule, parcels, mass)."""
    store_redis._APPLY_LUA = script  # the script a store registers when it is built
    events = parse_valid(lines)
    detector = Detector(
        load_reference(),
        load_rules(ROOT / "detectors" / "data" / "rules.toml"),
        Pseudonymizer(b"benchmark-secret-0123456789"),
    )
    client = aioredis.Redis.from_url(url)
    windows = ShardedWindowStore(client, WindowConfig.for_rules(detector.rules.longest_window_s), prefix="judge")
    due: tuple[Any, ...] = ()
    alerts: list[tuple[str, str, int, float]] = []
    stretches: list[float] = []
    mark = await redis_cpu_s(client)
    for first in tqdm(range(0, len(events), BATCH), desc="judging", unit="batch", file=sys.stderr):
        chunk = events[first : first + BATCH]
        clock = ClockInput(
            (PartitionReport(0, chunk[-1].event_time_ms, idle=False),), 1, LATENESS_S, due, int(time.time() * 1000)
        )
        outcome = await apply_batch(prepare_batch(chunk, detector), windows, clock)
        due = outcome.due
        if outcome.raised:
            await windows.acknowledge(outcome.raised)
            alerts += [(a.alert_id, a.rule_id, a.parcel_count, round(a.suspect_mass_kg, 6)) for a in outcome.raised]
        done = first + len(chunk)
        if done % stretch == 0 or done == len(events):
            now = await redis_cpu_s(client)
            stretches.append(now - mark)
            mark = now
    await client.aclose()
    return {"stretches": stretches, "alerts": sorted(alerts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--rate", type=float, default=4542.0, help="events per second of event time")
    parser.add_argument("--stretch", type=int, default=50_000, help="events per reported stretch")
    parser.add_argument("--against", metavar="REV", help="an earlier revision whose window script to run beside")
    args = parser.parse_args()
    if args.stretch % BATCH or args.stretch <= 0:
        parser.error(f"--stretch: a positive multiple of {BATCH}")
    scripts = {"this checkout": store_redis._APPLY_LUA}
    if args.against:
        shown = subprocess.run(
            ["git", "show", f"{args.against}:detectors/store_redis.lua"], cwd=ROOT, capture_output=True, text=True
        )
        if shown.returncode:
            raise SystemExit(f"--against {args.against}: {shown.stderr.strip()} (a revision of this repository)")
        scripts = {args.against: shown.stdout, **scripts}
    lines = live_stream(args.events, args.rate)
    runs = {}
    for name, script in scripts.items():
        with redis_server() as server:
            print(f"replaying with the window script of {name}...", file=sys.stderr)
            runs[name] = asyncio.run(replay(server.url, lines, args.stretch, script))
    names = list(runs)
    same = all(
        [(a[0], a[1], a[2]) for a in runs[n]["alerts"]] == [(a[0], a[1], a[2]) for a in runs[names[0]]["alerts"]]
        for n in names
    )
    command = f"python benchmarks/judging.py --events {args.events} --rate {args.rate:g} --stretch {args.stretch}" + (
        f" --against {args.against}" if args.against else ""
    )
    rows = []
    for i in range(len(runs[names[-1]]["stretches"])):
        upto = min((i + 1) * args.stretch, args.events)
        size = upto - i * args.stretch
        cells = [f"{runs[n]['stretches'][i] * 1e6 / size:,.1f}" for n in names]
        ratio = f" {runs[names[0]]['stretches'][i] / runs[names[-1]]['stretches'][i]:.1f} |" if len(names) > 1 else ""
        rows.append(f"| {i * args.stretch:,}-{upto:,} | " + " | ".join(cells) + " |" + ratio)
    totals = {n: sum(runs[n]["stretches"]) for n in names}
    write_section(
        "Judging busy entities",
        [
            provenance(command),
            f"{args.events:,} events as benchmarks/latency.py publishes them (each parcel's last event of a simulated"
            f" 60-day stream, seed 43, repeated under new ids), event times {args.rate:g} per second apart, so every"
            f" event falls inside every window and the entities grow busier as the run goes on; {BATCH} events per"
            f" store call, one partition never idle, lateness {LATENESS_S} s. No Kafka. redis-server CPU"
            " microseconds per event, by stretch of the run"
            + (
                " (the earlier revision's window script and this checkout's, each on a fresh server):"
                if len(names) > 1
                else ":"
            ),
            "",
            "| events | "
            + " | ".join(f"µs per event, {n}" for n in names)
            + " |"
            + (" ratio |" if len(names) > 1 else ""),
            "|---|" + "---:|" * len(names) + ("---:|" if len(names) > 1 else ""),
            *rows,
            "",
            "Whole run: "
            + "; ".join(
                f"{n} {totals[n]:.1f} CPU s ({args.events / totals[n]:,.0f} events per Redis core-second),"
                f" {len(runs[n]['alerts']):,} alerts"
                for n in names
            )
            + "."
            + (
                (
                    " The same alerts (id, rule, parcel count) in both."
                    if same
                    else " The alerts DIFFER between the two: see the issue."
                )
                if len(names) > 1
                else ""
            ),
            "",
            "Judging reads only the records that enter and leave each rule's window since the last end judged"
            ' (docs/windows.md, "Judging: windows slide from the last end judged"); before, each call read the'
            " entity's whole widest window, so a busy entity's calls grew with the records it held.",
        ],
    )
    if not same:
        raise SystemExit("the two scripts raised different alerts")


if __name__ == "__main__":
    main()
