"""Throughput ladder, one run, one broker, one stream: how fast each rung reads the same events.

    .venv/bin/python benchmarks/throughput.py --events 500000

1. a raw aiokafka ``getmany`` loop (the ceiling for a Python consumer);
2. a bare Faust agent that only counts (benchmarks/faust_counter.py), on Faust's own consumer and
   on the worker's eager one (streams/eager_consumer.py); beside it, Faust's fetch loop with a
   callback that only counts (benchmarks/faust_fetch_counter.py): what the agent's events and
   stream cost on top of fetching; and the worker's intake with a detector that only counts
   (benchmarks/faust_intake_counter.py): what getting its events costs a worker;
3. the full pipeline: a ``parcelwatch worker`` (validation, scoring, windows in Redis, alerts),
   reading the canonical topic directly (adapters off), timed by its committed offsets (committing
   every 0.2 s, and as a variant every 2.8 s, the default); it takes
   its batches straight from the consumer (streams/batch_intake.py), and, as variants, from a
   Faust agent's stream, on Faust's own consumer, on uvloop, with Python's default garbage
   collection, and with the window store in 3 shards on a local 3-master Redis Cluster; beside
   the pipeline, the CPU an event of its worker, redis-server and the broker, and the worker's cost
   split into getting its events (the intake probe), the detector's own stages (core_stages.py
   --split-only, right after the pipeline) and the rest;
4. scale-out: two ``parcelwatch worker`` processes in one consumer group, with Redis keys of
   their own; their alert store must hold exactly the alerts of the one-worker rung;
5. not the product, run right after the pipeline: the what-if worker (benchmarks/whatif_worker.py),
   whose events without suspect mass are not stored at all: what their parcel-wide rows cost.

Each rung reads the same topic (8 partitions) with a consumer group of its own, from the start.
The stream leaves out events later than the allowed lateness, whose fate depends on timing.
Writes its table into BENCHMARKS.md and ends with one JSON line: raw_aiokafka_eps, bare_faust_eps,
pipeline_eps, two_workers_eps and the variants'.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from streams.kafka_security import aiokafka_options
from streams.replay import (
    WORKER_ARGV,
    alert_ids,
    committed_progress,
    ensure_topics,
    input_ends,
    settings_env,
    start_worker,
)
from streams.servers import redis_cluster
from streams.settings import Settings
from streams.simulate import simulate, within_lateness

sys.path.insert(0, str(Path(__file__).parent))
from local import CpuShares, local_servers  # noqa: E402 - benchmarks are scripts, not a package
from report import provenance, write_result, write_section  # noqa: E402
from soak import publish  # noqa: E402

HERE = Path(__file__).parent
WHAT_IF = "whatif_worker.py"  # not the product: the end-to-end what-if (its docstring)


async def raw_rung(settings: Settings, events: int) -> float:
    consumer = AIOKafkaConsumer(
        settings.topic("canonical"),
        bootstrap_servers=settings.bootstrap_servers,
        group_id="bench-raw",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=64 << 20,
    )
    await consumer.start()
    try:
        # Timed from the first batch on (the group join is not counted), over the events after it.
        seen, first, first_batch = 0, 0.0, 0
        while seen < events:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            got = sum(len(records) for records in batches.values())
            if got and not first:
                first, first_batch = time.perf_counter(), got
            seen += got
        return (seen - first_batch) / (time.perf_counter() - first)
    finally:
        await consumer.stop()


def faust_rung(
    settings: Settings, events: int, script: str = "faust_counter.py", variant: tuple[str, ...] = ()
) -> dict[str, float]:
    """A Faust app of benchmarks/ (``script``, with its optional LOOP and CONSUMER) over the canonical
    topic, a consumer group of its own; its JSON result."""
    run = subprocess.run(  # noqa: S603 - our own script
        [
            sys.executable,
            str(HERE / script),
            settings.broker_url,
            settings.topic("canonical"),
            "-".join(("bench", script.removesuffix(".py"), *variant)),
            str(events),
            *variant,
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    # Faust's worker sends stdout through its logger: the JSON sits inside a log line.
    found = re.search(r'\{"events":[^}]*\}', run.stdout + run.stderr)
    if found is None:
        raise SystemExit(f"{script} printed no result (exit {run.returncode}):\n{run.stderr[-2000:]}")
    result: dict[str, float] = orjson.loads(found.group(0))
    return result | {"eps": result["events"] / result["seconds"]}


def stages_rung(events: int) -> dict[str, dict[str, float]]:
    """The worker's own stages alone, us an event (benchmarks/core_stages.py --split-only): one
    process, no Kafka, no Redis, over ``events`` of the ladder's stream."""
    run = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(HERE / "core_stages.py"), "--events", str(events), "--split-only"],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if run.returncode != 0:
        raise SystemExit(f"core_stages.py --split-only failed (exit {run.returncode}):\n{run.stderr[-2000:]}")
    result: dict[str, dict[str, float]] = orjson.loads(run.stdout.strip().splitlines()[-1])
    return result


class PipelineRun(NamedTuple):
    eps: float
    worker_cpu: float  # the workers' CPU time over the timed span, as a share of one core (summed over workers)
    server_cpu: dict[str, float]  # the same for each server asked for (``pipeline_rung``'s ``servers``)

    @property
    def eps_per_worker_core(self) -> float:
        """Events per second of worker CPU: what a worker would read with a core to itself and Redis elsewhere."""
        return self.eps / self.worker_cpu


# A timed worker commits this often, where a worker commits every 2.8 s by default (Faust's): the
# span, from the first commit seen to the one that covers the last event, ends at most this much
# (and one poll) after the worker's last batch. Taking commits 2.8 s apart counted up to 2.8 s of a
# worker with nothing left to read in a run of 10 to 20 s: the pipeline read slower than it does.
TIMED_COMMIT_S = 0.2
DEFAULT_COMMIT_S = Settings.model_fields["commit_interval_s"].default
POLL_S = 0.05


def pipeline_rung(
    settings: Settings,
    events: int,
    work: Path,
    workers: int = 1,
    servers: Mapping[str, int] | None = None,
    beside: Callable[[int], contextlib.AbstractContextManager[object]] | None = None,
    worker_argv: Sequence[str] = WORKER_ARGV,
    commit_interval_s: float = TIMED_COMMIT_S,
) -> PipelineRun:
    """From the first committed offset to the last: the workers' start-up is not counted. ``servers``:
    name -> pid of servers whose CPU over the same span to report beside the workers'. ``beside``:
    given the first worker's pid, what runs over the timed span (a profiler): entered when the span
    starts, left once it has been read. ``worker_argv``: how a worker is started (the what-if's
    differs). ``commit_interval_s``: how often the workers commit (``TIMED_COMMIT_S`` says why)."""
    settings = settings.model_copy(update={"commit_interval_s": commit_interval_s})
    with contextlib.ExitStack() as stack:
        running = []
        for n in range(workers):
            env = settings_env(settings) | {"PARCELWATCH_DATA_DIR": str(work / f"{settings.app_id}-{n}")}
            running.append(start_worker(stack, env, work / f"{settings.app_id}-{n}.log", worker_argv))
        return asyncio.run(_timed(settings, events, work, running, stack, servers or {}, beside))


async def _timed(
    settings: Settings,
    events: int,
    work: Path,
    running: list[subprocess.Popen[bytes]],
    stack: contextlib.ExitStack,
    servers: Mapping[str, int],
    beside: Callable[[int], contextlib.AbstractContextManager[object]] | None,
) -> PipelineRun:
    """``pipeline_rung``'s span, watched every ``POLL_S`` through one admin client."""
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        ends = await input_ends(settings)
        first_done, first_t = 0, 0.0
        while True:
            await asyncio.sleep(POLL_S)
            for n, worker in enumerate(running):
                if worker.poll() is not None:
                    log = work / f"{settings.app_id}-{n}.log"
                    raise SystemExit(f"a worker exited with code {worker.returncode}; see {log}")
            done, _ = await committed_progress(settings, admin, ends)
            if done and not first_t:
                first_done, first_t = done, time.perf_counter()
                worker_pids = {f"worker {n}": worker.pid for n, worker in enumerate(running)}
                if beside is not None:
                    stack.enter_context(beside(running[0].pid))  # left before the workers are stopped
                cpu = CpuShares(worker_pids | dict(servers))
            if done >= events:
                rate = (done - first_done) / (time.perf_counter() - first_t)
                shares = cpu.read()
                return PipelineRun(
                    rate, sum(shares[name] for name in worker_pids), {name: shares[name] for name in servers}
                )
    finally:
        await admin.close()


def ladder_lines(work: Path) -> list[bytes]:
    """The ladder's stream before it is repeated: a 60-day simulation without events beyond the
    lateness (their fate depends on timing)."""
    stream = work / "stream.jsonl"
    simulate(seed=41, days=60, out=stream, scale=4.0)
    return within_lateness(stream.read_bytes().splitlines(), lateness_ms=5 * 3600 * 1000)


def publish_stream(settings: Settings, work: Path, events: int) -> None:
    """The benchmarks' stream (``ladder_lines``) repeated with new ids, later times and new recipients
    (``soak.copies``) up to ``events`` on the canonical topic."""
    asyncio.run(ensure_topics(settings))
    asyncio.run(publish(settings, ladder_lines(work), events))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    args = parser.parse_args()
    if args.events < 100_000:
        parser.error("--events must be at least 100000: fewer are read in a handful of batches, too few to time")
    with tempfile.TemporaryDirectory(prefix="pw-throughput-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        settings, broker, redis = local_servers(stack, work, app_id="bench-pipeline")
        publish_stream(settings, work, args.events)
        raw = asyncio.run(raw_rung(settings, args.events))
        bare = faust_rung(settings, args.events, variant=("aio", "stock"))["eps"]
        bare_eager = faust_rung(settings, args.events, variant=("aio", "eager"))["eps"]
        fetch_loop = faust_rung(settings, args.events, "faust_fetch_counter.py", ("aio", "eager"))["eps"]
        intake_run = faust_rung(settings, args.events, "faust_intake_counter.py", ("aio", "eager"))
        intake, intake_cpu_us = intake_run["eps"], intake_run["cpu_seconds"] / intake_run["events"] * 1e6
        bare_eager_uvloop = faust_rung(settings, args.events, variant=("uvloop", "eager"))["eps"]
        run = pipeline_rung(
            settings, args.events, work, servers={"redis": redis.process.pid, "broker": broker.process.pid}
        )
        # Right after the pipeline, while the machine is as the pipeline found it (its speed drifts
        # by tens of percent over the ladder's minutes): the stages, then the what-if worker.
        stages = stages_rung(min(args.events, 100_000))
        whatif = settings.model_copy(update={"app_id": "bench-what-if", "redis_prefix": "pwwi"})
        run_whatif = pipeline_rung(whatif, args.events, work, worker_argv=(sys.executable, str(HERE / WHAT_IF)))
        slow_commits = settings.model_copy(update={"app_id": "bench-commit-default", "redis_prefix": "pwcd"})
        run_slow_commits = pipeline_rung(slow_commits, args.events, work, commit_interval_s=DEFAULT_COMMIT_S)
        stock = settings.model_copy(update={"app_id": "bench-stock", "redis_prefix": "pwst", "faust_consumer": "stock"})
        run_stock = pipeline_rung(stock, args.events, work)
        uv = settings.model_copy(update={"app_id": "bench-uvloop", "redis_prefix": "pwuv", "event_loop": "uvloop"})
        run_uvloop = pipeline_rung(uv, args.events, work)
        by_stream = settings.model_copy(
            update={"app_id": "bench-stream-intake", "redis_prefix": "pwsi", "intake": "stream"}
        )
        run_stream = pipeline_rung(by_stream, args.events, work)
        gc_default = settings.model_copy(
            update={"app_id": "bench-gc-default", "redis_prefix": "pwgc", "gc_young_threshold": 0}
        )
        run_gc_default = pipeline_rung(gc_default, args.events, work)
        cluster = stack.enter_context(redis_cluster(masters=3, workdir=work / "cluster"))
        sharded = settings.model_copy(
            update={
                "app_id": "bench-sharded",
                "redis_url": cluster.url,
                "redis_cluster": True,
                "redis_prefix": "{pwsh}",
                "redis_shards": 3,
            }
        )
        run_sharded = pipeline_rung(sharded, args.events, work)
        two = settings.model_copy(update={"app_id": "bench-two-workers", "redis_prefix": "pwtwo"})
        run_two = pipeline_rung(two, args.events, work, workers=2)
        one_alerts = asyncio.run(alert_ids(settings))
        whatif_alerts = asyncio.run(alert_ids(whatif))
        others = {
            name: asyncio.run(alert_ids(s))
            for name, s in (
                ("two", two),
                ("stock", stock),
                ("uvloop", uv),
                ("gc", gc_default),
                ("stream", by_stream),
                ("sharded", sharded),
                ("commits", slow_commits),
            )
        }
    pipeline, pipeline_stock, pipeline_uvloop, two_workers = run.eps, run_stock.eps, run_uvloop.eps, run_two.eps
    pipeline_gc_default = run_gc_default.eps

    machine = {
        "the worker": run.worker_cpu,
        "redis-server": run.server_cpu["redis"],
        "the Tansu broker": run.server_cpu["broker"],
    }
    us_an_event = {name: share / pipeline * 1e6 for name, share in machine.items()}
    machine_us = sum(us_an_event.values())
    today = stages["today"]
    today_us = sum(today.values())
    whole_us = us_an_event["the worker"]
    cores = os.cpu_count() or 1

    def same(name: str) -> str:
        return "the same as" if others[name] == one_alerts else "not the same as"

    body = [
        provenance(f"python benchmarks/throughput.py --events {args.events}"),
        "",
        f"{args.events:,} canonical events (a 60-day simulated stream, repeated with new ids, later times and new"
        " recipients: shops send again, customers are mostly new, as in a real stream), "
        "8 partitions, one Tansu broker; each rung a consumer group of its own reading from the start, "
        "one after the other in one run. Pipeline: one `parcelwatch worker`, timed from its first committed "
        f"offset to its last, committing every {TIMED_COMMIT_S} s (where a worker commits every {DEFAULT_COMMIT_S} s"
        " by default: a variant below). The eager consumer (`streams/eager_consumer.py`, the worker's default) hands "
        "each message on without the four asyncio tasks per message of Faust's own. The pipeline takes its "
        "batches straight from the consumer (`streams/batch_intake.py`, the worker's default), not through "
        "Faust's events and an agent's stream; the eager consumer hands it a partition's fetched records at a "
        "time, Faust's own consumer a message at a time through its callback.",
        "",
        "| rung | events/s | ratio to the rung above |",
        "|---|---|---|",
        f"| raw aiokafka `getmany` | {raw:,.0f} | |",
        f"| bare Faust agent, counting, Faust's own consumer | {bare:,.0f} | {bare / raw:.3f} |",
        f"| bare Faust agent, counting, eager consumer | {bare_eager:,.0f} | {bare_eager / bare:.3f} |",
        f"| full pipeline (eager consumer, batch intake) | {pipeline:,.0f} | {pipeline / bare_eager:.3f} "
        f"({pipeline / bare:.3f} of the bare agent on Faust's own consumer) |",
        "",
        "Below the agent, in the same run: Faust's fetch loop on the eager consumer with a callback that only"
        " counts (`benchmarks/faust_fetch_counter.py`; no events, no stream), beside the raw loop and the agent:",
        "",
        "| probe | events/s | ratio to raw aiokafka | ratio to the bare eager agent |",
        "|---|---|---|---|",
        f"| Faust's fetch loop, counting callback | {fetch_loop:,.0f} | {fetch_loop / raw:.3f} |"
        f" {fetch_loop / bare_eager:.2f} |",
        f"| the worker's intake, batches taken and acknowledged, no detector | {intake:,.0f} | {intake / raw:.3f} |"
        f" {intake / bare_eager:.2f} |",
        "",
        "The intake probe (`benchmarks/faust_intake_counter.py`) takes the worker's batches the worker's way and"
        " acknowledges them, so that Faust commits their offsets; its CPU time over the timed span, per event, is"
        " what getting its events costs a worker. Right after the pipeline, in the same run,"
        f" `benchmarks/core_stages.py --events {stages['events']} --split-only` timed the detector's own four"
        " stages alone (one process, no Kafka, no Redis; the faster of two runs). What an event costs the"
        " pipeline's worker (per worker core, below), split:",
        "",
        "| part | us an event |",
        "|---|---:|",
        f"| the whole worker | {whole_us:.1f} |",
        f"| getting its events (the intake probe) | {intake_cpu_us:.1f} |",
        f"| the detector's four stages: parse {today['parse']:.1f}, score {today['score']:.1f}, link"
        f" {today['link']:.1f}, the store's request {today['request']:.1f} | {today_us:.1f} |",
        f"| the rest: the store call's client side, the worker's bookkeeping and metrics (what is left) |"
        f" {whole_us - intake_cpu_us - today_us:.1f} |",
        "",
        "40,000 events per worker core is 25 us an event.",
        "",
        "What the pipeline's run cost the machine: each process's CPU time over the timed span, as a share"
        " of one core, and per event read (the share divided by the events/s):",
        "",
        "| process | CPU, share of one core | CPU an event |",
        "|---|---:|---:|",
        *(f"| {name} | {share:.0%} | {us_an_event[name]:.1f} us |" for name, share in machine.items()),
        f"| the three together | {sum(machine.values()):.0%} | {machine_us:.1f} us |",
        "",
        f"The three share this machine's {cores} cores. At these costs they could read at most {cores} /"
        f" {machine_us:.1f} us = {cores / machine_us * 1e6:,.0f} events/s together, with nothing else"
        f" running; 40,000 events/s here would need them to spend at most {cores / 40_000 * 1e6:.0f} us an"
        " event together. The worker alone, with a core to itself, is the next table's events per worker core.",
        "",
        "Beside the ladder, in the same run (worker CPU: the worker's user and system time over the timed"
        " span, as a share of one core; events per worker core: events/s divided by that share, what a"
        " worker would read with a core to itself and Redis and the broker elsewhere):",
        "",
        "| variant | events/s | ratio to its twin | worker CPU | events per worker core |",
        "|---|---|---|---:|---:|",
        f"| full pipeline (as above) | {pipeline:,.0f} | | {run.worker_cpu:.0%} | {run.eps_per_worker_core:,.0f} |",
        f"| full pipeline, stream intake (`PARCELWATCH_INTAKE=stream`: a Faust agent's `noack_take`) |"
        f" {run_stream.eps:,.0f} | {run_stream.eps / pipeline:.3f} (to the pipeline) | {run_stream.worker_cpu:.0%} |"
        f" {run_stream.eps_per_worker_core:,.0f} |",
        f"| full pipeline on Faust's own consumer (`PARCELWATCH_FAUST_CONSUMER=stock`) | {pipeline_stock:,.0f} | "
        f"{pipeline_stock / pipeline:.3f} (to the pipeline) | {run_stock.worker_cpu:.0%} |"
        f" {run_stock.eps_per_worker_core:,.0f} |",
        f"| full pipeline, Python's default garbage collection (`PARCELWATCH_GC_YOUNG_THRESHOLD=0`) |"
        f" {pipeline_gc_default:,.0f} | {pipeline_gc_default / pipeline:.3f} (to the pipeline) |"
        f" {run_gc_default.worker_cpu:.0%} | {run_gc_default.eps_per_worker_core:,.0f} |",
        "| full pipeline, window store in 3 shards on a local 3-master Redis Cluster (`PARCELWATCH_REDIS_SHARDS=3`)"
        f" | {run_sharded.eps:,.0f} | {run_sharded.eps / pipeline:.3f} (to the pipeline) |"
        f" {run_sharded.worker_cpu:.0%} | {run_sharded.eps_per_worker_core:,.0f} |",
        f"| bare Faust agent, counting, eager consumer, uvloop | {bare_eager_uvloop:,.0f} | "
        f"{bare_eager_uvloop / bare_eager:.3f} (to the eager agent on asyncio) | | |",
        f"| full pipeline, uvloop (`PARCELWATCH_EVENT_LOOP=uvloop`) | {pipeline_uvloop:,.0f} | "
        f"{pipeline_uvloop / pipeline:.3f} (to the pipeline) | {run_uvloop.worker_cpu:.0%} |"
        f" {run_uvloop.eps_per_worker_core:,.0f} |",
        f"| full pipeline, timed on commits every {DEFAULT_COMMIT_S} s, the worker's default"
        f" (`PARCELWATCH_COMMIT_INTERVAL_S`) | {run_slow_commits.eps:,.0f} | {run_slow_commits.eps / pipeline:.3f}"
        f" (to the pipeline) | {run_slow_commits.worker_cpu:.0%} | {run_slow_commits.eps_per_worker_core:,.0f} |",
        f"| what-if, not the product: events without suspect mass not stored at all (`benchmarks/{WHAT_IF}`)"
        f" | {run_whatif.eps:,.0f} | {run_whatif.eps / pipeline:.3f} (to the pipeline) | {run_whatif.worker_cpu:.0%} |"
        f" {run_whatif.eps_per_worker_core:,.0f} |",
        "",
        "| scale-out | events/s | ratio | workers' CPU |",
        "|---|---|---|---:|",
        f"| full pipeline, two workers in one group (aggregate) | {two_workers:,.0f} | {two_workers / pipeline:.3f}"
        f" (to one worker) | {run_two.worker_cpu:.0%} |",
        "",
        f"Alerts: one worker raised {len(one_alerts):,}, two workers {len(others['two']):,}; "
        f"in both {len(one_alerts & others['two']):,}, only with one worker {len(one_alerts - others['two']):,}, "
        f"only with two {len(others['two'] - one_alerts):,}. "
        "The two workers share this machine's 2 cores with each other, Redis and the broker. "
        f"The worker on Faust's own consumer raised {len(others['stock']):,}, {same('stock')} the eager one; "
        f"the uvloop worker {len(others['uvloop']):,}, {same('uvloop')} the asyncio one; "
        f"the worker with Python's default collection {len(others['gc']):,}, {same('gc')} the default one; "
        f"the worker on the stream intake {len(others['stream']):,}, {same('stream')} the batch intake; "
        f"the worker on three shards {len(others['sharded']):,}, {same('sharded')} the one on one Redis; "
        f"the worker committing every {DEFAULT_COMMIT_S} s {len(others['commits']):,}, {same('commits')} the one"
        f" committing every {TIMED_COMMIT_S} s."
        " The cluster's three redis-servers share the same 2 cores too.",
        "",
        f"The what-if worker (`benchmarks/{WHAT_IF}`): an event without suspect mass, not a cancellation, is"
        " parsed, scored and acknowledged, and not stored at all, where the pipeline sends it parcel-wide (one"
        ' row, no entity: docs/windows.md, "Parked records"). What those rows cost a worker is the difference:'
        f" {run_whatif.eps_per_worker_core:,.0f} events per worker core against the pipeline's"
        f" {run.eps_per_worker_core:,.0f} ({1e6 / run_whatif.eps_per_worker_core:.1f} us an event against"
        f" {1e6 / run.eps_per_worker_core:.1f}). It raised {len(whatif_alerts):,} alerts,"
        f" {'the same as' if whatif_alerts == one_alerts else 'not the same as'} the pipeline"
        f" ({len(whatif_alerts & one_alerts):,} in both); it is not the product, and its alerts are not held"
        " to the product's.",
        "",
        "Commits: the timed span runs from the first commit seen to the one that covers the last event. A"
        f" worker committing every {DEFAULT_COMMIT_S} s may have read its last event up to {DEFAULT_COMMIT_S} s"
        f" before that commit, and those idle seconds count in its span of {args.events / run_slow_commits.eps:.0f} s:"
        " the variant's events/s."
        f" Committing every {TIMED_COMMIT_S} s, at most {TIMED_COMMIT_S} s count. An idle worker adds span, not"
        " CPU, so the interval should not move events per worker core; apart from it, the two runs differ by"
        " when in the ladder they ran, and the machine's speed drifts over its minutes:"
        f" {run_slow_commits.eps_per_worker_core:,.0f} against {run.eps_per_worker_core:,.0f}. The ladder's runs before"
        f" 2026-12-06 15:30 UTC were timed on commits every {DEFAULT_COMMIT_S} s.",
        "",
        f"Target: the pipeline at >= 80% of the bare Faust agent; it is at {pipeline / bare_eager:.0%} of the "
        f"agent on the same (eager) consumer and {pipeline / bare:.0%} of the agent on Faust's own. "
        f"Target: >= 40,000 events/s per worker for the pipeline; it is at {pipeline:,.0f}, and at"
        f" {run.eps_per_worker_core:,.0f} per second of worker CPU.",
    ]
    write_section("Throughput ladder", body)
    figures = {
        "events": args.events,
        "raw_aiokafka_eps": round(raw),
        "bare_faust_eps": round(bare),
        "bare_faust_eager_eps": round(bare_eager),
        "bare_faust_eager_uvloop_eps": round(bare_eager_uvloop),
        "faust_fetch_loop_eps": round(fetch_loop),
        "intake_only_eps": round(intake),
        "intake_only_cpu_us_per_event": round(intake_cpu_us, 2),
        "pipeline_eps": round(pipeline),
        "pipeline_stock_consumer_eps": round(pipeline_stock),
        "pipeline_stream_intake_eps": round(run_stream.eps),
        "pipeline_uvloop_eps": round(pipeline_uvloop),
        "pipeline_gc_default_eps": round(pipeline_gc_default),
        "pipeline_commit_default_eps": round(run_slow_commits.eps),
        "pipeline_commit_default_eps_per_worker_core": round(run_slow_commits.eps_per_worker_core),
        "pipeline_three_shards_eps": round(run_sharded.eps),
        "pipeline_three_shards_eps_per_worker_core": round(run_sharded.eps_per_worker_core),
        "pipeline_eps_per_worker_core": round(run.eps_per_worker_core),
        "pipeline_redis_cpu_us_per_event": round(us_an_event["redis-server"], 2),
        "pipeline_broker_cpu_us_per_event": round(us_an_event["the Tansu broker"], 2),
        "machine_ceiling_eps": round(cores / machine_us * 1e6),
        "stages_us_per_event": round(today_us, 2),
        "what_if_worker_eps": round(run_whatif.eps),
        "what_if_worker_eps_per_worker_core": round(run_whatif.eps_per_worker_core),
        "two_workers_eps": round(two_workers),
        "same_alerts": all(ids == one_alerts for ids in others.values()),
    }
    write_result("throughput", figures, f"python benchmarks/throughput.py --events {args.events}")
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
