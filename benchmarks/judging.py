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
checks both against the in-memory store (the contract). Writes its table into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import redis.asyncio as aioredis
from tqdm import tqdm

import detectors.store_redis as store_redis
from detectors.entities import Pseudonymizer
from detectors.offline import parse_valid
from detectors.pipeline import Detector, apply_batch, prepare_batch
from detectors.reference import load_reference
from detectors.rules import load_rules
from detectors.store import ClockInput, PartitionReport, WindowStore
from detectors.store_memory import MemoryWindowStore
from detectors.store_sharded import ShardedWindowStore
from detectors.windows import WindowConfig
from streams.servers import redis_server
from streams.simulate import simulate

sys.path.insert(0, str(Path(__file__).parent))
from core import redis_cpu_s  # noqa: E402 - benchmarks are scripts, not a package
from latency import last_event_per_parcel, republished  # noqa: E402
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
        event = republished(parcels, i)
        event["event_time"] = start_ms + int(i * 1000 / rate)
        lines.append(orjson.dumps(event))
    return lines


class Raised(NamedTuple):
    rule: str
    entity: str
    episode: int
    parcels: int
    mass_kg: float


def detector() -> Detector:
    return Detector(
        load_reference(),
        load_rules(ROOT / "detectors" / "data" / "rules.toml"),
        Pseudonymizer(b"benchmark-secret-0123456789"),
    )


async def replay(lines: list[bytes], stretch: int, url: str | None = None, script: str | None = None) -> dict[str, Any]:
    """The alerts raised by id and, against the Redis at ``url`` with window script ``script``,
    redis-server CPU seconds per stretch; with no ``url``, the in-memory store (the contract)."""
    events = parse_valid(lines)
    pipeline = detector()
    config = WindowConfig.for_rules(pipeline.rules.longest_window_s)
    client: Any = None
    windows: WindowStore
    if url is None:
        windows = MemoryWindowStore(config)
    else:
        client = aioredis.Redis.from_url(url)
        # A store registers the module's script when it is built: this one registers ``script``
        # (this checkout's when None).
        checkout = store_redis._APPLY_LUA
        store_redis._APPLY_LUA = script or checkout
        try:
            windows = ShardedWindowStore(client, config, prefix="judge")
        finally:
            store_redis._APPLY_LUA = checkout
    due: tuple[Any, ...] = ()
    alerts: dict[str, Raised] = {}
    stretches: list[float] = []
    mark = await redis_cpu_s(client) if client else 0.0
    desc = "judging" if client else "judging in memory"
    for first in tqdm(range(0, len(events), BATCH), desc=desc, unit="batch", file=sys.stderr):
        chunk = events[first : first + BATCH]
        clock = ClockInput(
            (PartitionReport(0, chunk[-1].event_time_ms, idle=False),), 1, LATENESS_S, due, int(time.time() * 1000)
        )
        outcome = await apply_batch(prepare_batch(chunk, pipeline), windows, clock)
        due = outcome.due
        if outcome.raised:
            await windows.acknowledge(outcome.raised)
            for a in outcome.raised:
                alerts[a.alert_id] = Raised(a.rule_id, a.entity.tag, a.episode, a.parcel_count, a.suspect_mass_kg)
        done = first + len(chunk)
        if client and (done % stretch == 0 or done == len(events)):
            now = await redis_cpu_s(client)
            stretches.append(now - mark)
            mark = now
    if client:
        await client.aclose()
    return {"stretches": stretches, "alerts": alerts}


def differences(got: dict[str, Raised], want: dict[str, Raised], factors: dict[str, float]) -> tuple[int, int]:
    """How many alerts of ``got`` are not ``want``'s (id, parcels, mass to the milligram), and how
    many of those are raised one end later where ``want``'s window weighs exactly the regrow target
    (the last episode's mass times the rule's factor, to the milligram)."""
    by_episode = {(r.rule, r.entity, r.episode): r for r in want.values()}
    differ = at_target = 0
    for alert_id in got.keys() | want.keys():
        g, w = got.get(alert_id), want.get(alert_id)
        if g and w and (g.parcels, round(g.mass_kg, 6)) == (w.parcels, round(w.mass_kg, 6)):
            continue
        differ += 1
        last = by_episode.get((w.rule, w.entity, w.episode - 1)) if w else None
        if (
            g
            and w
            and last
            and g.parcels > w.parcels
            and round(last.mass_kg * factors[w.rule], 6) == round(w.mass_kg, 6)
        ):
            at_target += 1
    return differ, at_target


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
    print("replaying into the in-memory store (the contract both Redis scripts are held to)...", file=sys.stderr)
    contract = asyncio.run(replay(lines, args.stretch))["alerts"]
    runs = {}
    for name, script in scripts.items():
        with redis_server() as server:
            print(f"replaying with the window script of {name}...", file=sys.stderr)
            runs[name] = asyncio.run(replay(lines, args.stretch, server.url, script))
    factors = {rule.id: rule.regrow_factor for rule in detector().rules.rules}
    diffs = {name: differences(run["alerts"], contract, factors) for name, run in runs.items()}
    names = list(runs)
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

    def agreement(name: str) -> str:
        differ, at_target = diffs[name]
        if not differ:
            return "all equal to the in-memory store's"
        return (
            f"{differ} differ from the in-memory store's, {at_target} of them raised at a later end where the"
            " window weighs exactly the regrow target (masses added as floats fell a hair short)"
        )

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
                f"{n}, {totals[n]:.1f} CPU s ({args.events / totals[n]:,.0f} events per Redis core-second),"
                f" {len(runs[n]['alerts']):,} alerts, {agreement(n)}"
                for n in names
            )
            + ". The in-memory store (the contract, as in this checkout: it adds each window afresh, in whole"
            f" milligrams) raised {len(contract):,}.",
            "",
            "Judging reads only the records that enter and leave each rule's window since the last end judged"
            ' (docs/windows.md, "Judging: windows slide from the last end judged"); before, each call read the'
            " entity's whole widest window, so a busy entity's calls grew with the records it held.",
        ],
    )
    if diffs[names[-1]][0]:
        raise SystemExit("this checkout's alerts differ from the in-memory store's: a defect, see the table")


if __name__ == "__main__":
    main()
