"""Event-to-alert latency at steady publish rates (50% and 80% of the measured maximum by default).

    .venv/bin/python benchmarks/latency.py [--seconds 120] [--fractions 0.5,0.8] [--lateness 1s]
                                           [--batch-within 0.2,0.05] [--consumers eager,stock]
                                           [--max-seconds 60] [--lingers 25,5]

A `parcelwatch worker` runs live; events are published at a steady rate, each stamped with the
wall-clock time of its publishing as its event time. One event per parcel (the parcel's last in a
simulated stream), so that an alert's last event time is the time the event that completed its
window was published. Latency = the alert's timestamp on the alerts topic (set by the worker's
producer) - that time, for the alerts whose last event came within the measured period (publishing
goes on a little longer, so the stream's time keeps moving past them). Each rate is a fraction
(50% and 80% by default) of the measured maximum, each run on fresh servers. The maximum is the lesser
of the pipeline's events/s in benchmarks/results/throughput.json, where a worker reads a topic filled
beforehand with the machine to itself, and the rate a live worker keeps up with while a publisher on
the same cores publishes at that rate (measured first, ``--max-seconds``). The allowed lateness is
part of the latency by design (an end is judged once every partition is that far past it): it is set
short here and stated.
Writes its table into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from tqdm import tqdm

from detectors.rules import parse_duration
from streams.replay import committed_progress, ensure_topics, settings_env, start_worker
from streams.servers import free_port
from streams.settings import Settings
from streams.simulate import simulate

sys.path.insert(0, str(Path(__file__).parent))
from local import CpuShares, local_servers  # noqa: E402 - benchmarks are scripts, not a package
from report import boot, provenance, read_result, require_one_machine, write_result, write_section  # noqa: E402

FAUST_FETCH_WAIT_MS = 1500  # fixed in faust/transport/drivers/aiokafka.py (_create_worker_consumer)
DEFAULT_PARTITIONS = Settings.model_fields["partitions"].default


def last_event_per_parcel(lines: list[bytes]) -> list[dict[str, Any]]:
    last: dict[str, dict[str, Any]] = {}
    for line in lines:
        with contextlib.suppress(orjson.JSONDecodeError):
            event = orjson.loads(line)
            if isinstance(event, dict) and isinstance(event.get("event_time"), int) and event.get("parcel_id"):
                last[event["parcel_id"]] = event
    return sorted(last.values(), key=lambda e: e["event_time"])


def republished(events: list[dict[str, Any]], i: int) -> dict[str, Any]:
    """The ``i``-th event published from ``events``, over and over: past the first round, its
    parcel and event ids carry the round, so that every round is new parcels."""
    event = dict(events[i % len(events)])
    if i >= len(events):
        event["parcel_id"] = f"{event['parcel_id']}~{i // len(events)}"
        event["event_id"] = f"{event['event_id']}~{i // len(events)}"
    return event


async def paced(indices: Iterable[int], rate: float) -> AsyncIterator[int]:
    """Each index when it is due at ``rate`` per second from now (none is sent early)."""
    started = time.monotonic()
    for i in indices:
        if (wait := started + i / rate - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        yield i


async def publish_steadily(
    settings: Settings,
    events: list[dict[str, Any]],
    rate: float,
    seconds: float,
    linger_ms: int,
    stop_at: float | None = None,
) -> int:
    """``rate`` events/s for ``seconds``; the events published. ``linger_ms``: how long the publisher's
    producer waits to fill a batch (part of the latency measured). ``stop_at``: a ``time.monotonic()``
    at which to stop, published or not (a publisher slower than ``rate`` would go on long after)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=linger_ms)
    await producer.start()
    try:
        total = int(rate * seconds)
        pending = []
        published = 0
        async for i in paced(tqdm(range(total), desc="publishing", unit="ev", mininterval=5, file=sys.stderr), rate):
            if stop_at is not None and i % 1000 == 0 and time.monotonic() >= stop_at:
                break
            published += 1
            event = republished(events, i)
            event["event_time"] = int(time.time() * 1000)
            pending.append(
                await producer.send(settings.topic("canonical"), orjson.dumps(event), key=event["parcel_id"].encode())
            )
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return published
    finally:
        await producer.stop()


async def alert_latencies(settings: Settings, until_ms: float) -> list[float]:
    """The latency of each alert whose last event was published before ``until_ms``, in the order of
    their last events."""
    consumer = AIOKafkaConsumer(
        settings.topic("alerts"),
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    latencies: dict[str, tuple[float, float]] = {}
    try:
        idle = 0
        while idle < 3:
            batches = await consumer.getmany(timeout_ms=1000)
            idle = 0 if batches else idle + 1
            for records in batches.values():
                for record in records:
                    alert = orjson.loads(record.value)
                    last = alert["last_event_time"].replace("Z", "+00:00")
                    last_ms = datetime.fromisoformat(last).timestamp() * 1000
                    if last_ms <= until_ms:
                        latencies.setdefault(alert["alert_id"], (last_ms, (record.timestamp - last_ms) / 1000))
    finally:
        await consumer.stop()
    return [latency for _, latency in sorted(latencies.values())]


async def broker_latencies(
    settings: Settings, rate: float, seconds: float, fetch_max_wait_ms: int, value_bytes: int, linger_ms: int
) -> list[float]:
    """The broker alone: a bare aiokafka consumer's delay from send to receipt, on a topic of its own,
    messages padded to ``value_bytes`` (the broker's cost grows with the bytes it holds)."""
    own = settings.model_copy(update={"topic_prefix": f"broker-latency-{fetch_max_wait_ms}-{linger_ms}."})
    await ensure_topics(own)
    topic = own.topic("canonical")
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=topic,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=linger_ms)
    await consumer.start()
    await producer.start()
    delays: list[float] = []
    total = int(rate * seconds)

    async def receive() -> None:
        while len(delays) < total:
            batches = await consumer.getmany(timeout_ms=1000)
            now = time.time()
            delays.extend(
                now - float(record.value.split(b"|", 1)[0]) for records in batches.values() for record in records
            )

    try:
        await consumer.getmany(timeout_ms=3000)  # joins the group before the clock starts
        receiving = asyncio.ensure_future(receive())
        async for i in paced(range(total), rate):
            value = f"{time.time()}|".encode().ljust(value_bytes, b" ")
            await producer.send(topic, value, partition=i % settings.partitions)
        await producer.flush()
        await asyncio.wait_for(receiving, timeout=60)
    finally:
        await producer.stop()
        await consumer.stop()
    return delays


def broker_alone(
    rate: float, seconds: float, runs: list[tuple[int, int]], value_bytes: int, partitions: int
) -> list[tuple[int, int, list[float], float]]:
    """For each (fetch wait, publisher linger): the delays, and the broker's CPU over the run as a share
    of one core. Each run on a fresh broker, as each worker run above: the broker's delay grows with its log."""
    out = []
    for wait, linger in runs:
        with tempfile.TemporaryDirectory(prefix="pw-broker-latency-") as tmp, contextlib.ExitStack() as stack:
            settings, broker, _ = local_servers(stack, Path(tmp), app_id="bench-broker-latency", partitions=partitions)
            cpu = CpuShares({"broker": broker.process.pid})
            delays = asyncio.run(broker_latencies(settings, rate, seconds, wait, value_bytes, linger))
            out.append((wait, linger, delays, cpu.read()["broker"]))
    return out


def wait_ready(port: int, worker: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> None:
    """Until the worker has joined its group (/readyz answers 200): the publishing clock starts then."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with code {worker.returncode}; see {log}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        time.sleep(0.5)
    raise SystemExit(f"the worker was not ready within {timeout_s:.0f} s; see {log}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def p99_by_half(values: list[float]) -> str:
    """p99 of the first and of the second half of ``values`` (in the order they came): the broker's
    delivery delay grows with its log, so a run's tail is at its end."""
    middle = len(values) // 2
    return f"{percentile(values[:middle] or values, 0.99):.3f} | {percentile(values[middle:], 0.99):.3f}"


def mean_event_bytes() -> int:
    """The mean size of the events the runs publish (the broker-alone messages are padded to it)."""
    with tempfile.TemporaryDirectory(prefix="pw-latency-size-") as tmp:
        stream = Path(tmp) / "stream.jsonl"
        simulate(seed=43, days=60, out=stream, scale=4.0)
        events = last_event_per_parcel(stream.read_bytes().splitlines())
    return round(statistics.fmean(len(orjson.dumps(e)) for e in events))


class Run(NamedTuple):
    """One live worker's run at one rate: how it was set up and what it measured."""

    consumer: str
    batch_within_s: float
    linger_ms: int
    fraction: float
    rate: float
    published: int
    latencies: list[float]
    cpu: dict[str, float]


@dataclass
class Live:
    """A live worker on fresh servers, and the events to publish to it."""

    settings: Settings
    work: Path
    worker: subprocess.Popen[bytes]
    pids: dict[str, int]  # worker, redis, broker
    events: list[dict[str, Any]]


@contextlib.contextmanager
def live_worker(lateness: str, batch_within_s: float, consumer: str, partitions: int) -> Iterator[Live]:
    with tempfile.TemporaryDirectory(prefix="pw-latency-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        port = free_port()
        settings, broker, redis = local_servers(
            stack,
            work,
            app_id="bench-latency",
            allowed_lateness=lateness,
            metrics_port=port,
            batch_within_s=batch_within_s,
            faust_consumer=consumer,
            partitions=partitions,
        )
        stream = work / "stream.jsonl"
        simulate(seed=43, days=60, out=stream, scale=4.0)
        events = last_event_per_parcel(stream.read_bytes().splitlines())
        asyncio.run(ensure_topics(settings))
        env = settings_env(settings) | {"PARCELWATCH_DATA_DIR": str(work / "worker")}
        worker = start_worker(stack, env, work / "worker.log")
        wait_ready(port, worker, work / "worker.log")
        pids = {"worker": worker.pid, "redis": redis.process.pid, "broker": broker.process.pid}
        yield Live(settings, work, worker, pids, events)


def live_maximum(
    rate: float, seconds: float, lateness: str, batch_within_s: float, consumer: str, partitions: int, linger_ms: int
) -> float:
    """The rate a live worker keeps up with while events are published at ``rate``, its publisher beside it.

    Its committed offsets are counted over the second half of ``seconds`` (the first is warm-up).
    Published faster than it reads, this is its maximum with a publisher on the same cores; if it keeps
    up, it is ``rate`` (about: offsets are committed every few seconds).
    """
    with live_worker(lateness, batch_within_s, consumer, partitions) as live, ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        # Published no longer than measured: at the ladder's rate a publisher on these cores falls far
        # behind, and would otherwise go on for many times ``seconds``.
        stop_at = started + seconds
        publishing = pool.submit(
            asyncio.run, publish_steadily(live.settings, live.events, rate, seconds, linger_ms, stop_at)
        )
        time.sleep(seconds / 2)
        first, first_t = asyncio.run(committed_progress(live.settings))[0], time.monotonic()
        time.sleep(max(started + seconds - time.monotonic(), 0))
        last, last_t = asyncio.run(committed_progress(live.settings))[0], time.monotonic()
        publishing.result()  # a publisher that failed measured nothing: its error, not a rate
        return (last - first) / (last_t - first_t)


def measure(
    rate: float, seconds: float, lateness: str, batch_within_s: float, consumer: str, partitions: int, linger_ms: int
) -> tuple[int, list[float], dict[str, float]]:
    """One live worker on fresh servers, events published at ``rate``: the events published, the
    latencies of its alerts, and the CPU of the worker, the publisher, Redis and the broker over the
    publishing, each as a share of one core."""
    with live_worker(lateness, batch_within_s, consumer, partitions) as live:
        settings, work, worker = live.settings, live.work, live.worker
        # The stream goes on past the measured period, as a live one does: an end is judged once the
        # stream's time is the lateness past it, and without later events only the idle timeout
        # would move it (a stop, not the steady state measured here).
        tail_s = parse_duration(lateness, "--lateness") + 2 * settings.idle_after_s
        until_ms = time.time() * 1000 + seconds * 1000
        shares = CpuShares(live.pids | {"publisher": os.getpid()})
        published = asyncio.run(publish_steadily(settings, live.events, rate, seconds + tail_s, linger_ms))
        cpu = shares.read()
        deadline = time.monotonic() + 600
        while asyncio.run(committed_progress(settings))[0] < published:
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not finish; see {work / 'worker.log'}")
            time.sleep(1)
        time.sleep(3 + parse_duration(lateness, "--lateness"))
        latencies = asyncio.run(alert_latencies(settings, until_ms))
    if not latencies:
        raise SystemExit("no alert was raised: run longer (--seconds)")
    return published, latencies, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument(
        "--fractions",
        default="0.5,0.8",
        help="rates to run, as fractions of the measured maximum (comma-separated; the last is the target's)",
    )
    parser.add_argument("--lateness", default="1s", help="PARCELWATCH_ALLOWED_LATENESS for the run")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="how long to publish at the ladder's rate to measure the live maximum (its second half is counted)",
    )
    parser.add_argument(
        "--batch-within",
        default="0.2",
        help="PARCELWATCH_BATCH_WITHIN_S values to run each rate with (comma-separated; the first is the target's)",
    )
    parser.add_argument(
        "--consumers",
        default="eager",
        help="PARCELWATCH_FAUST_CONSUMER values to run each rate with (comma-separated; the first is the target's)",
    )
    parser.add_argument(
        "--lingers",
        default="25,5",
        help="how long the publisher's producer waits to fill a batch, in ms (comma-separated; the first is the"
        " target's); the events' latency counts it. Tansu spends its CPU per batch a request carries, one per"
        " partition, so short lingers over many partitions load the broker, not the worker",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=DEFAULT_PARTITIONS,
        help=f"partitions of the topics (default {DEFAULT_PARTITIONS}, as in the other benchmarks); another count"
        " writes a section and a result of its own",
    )
    parser.add_argument(
        "--mixed-machines",
        action="store_true",
        help="go on when benchmarks/results/throughput.json was measured on another machine (the section says so)",
    )
    args = parser.parse_args()
    if args.partitions < 1:
        parser.error("--partitions must be at least 1")
    fractions = [float(f) for f in args.fractions.split(",")]
    withins = [float(w) for w in args.batch_within.split(",")]
    consumers = args.consumers.split(",")
    try:
        lingers = [int(linger) for linger in args.lingers.split(",")]
    except ValueError:
        parser.error(f"--lingers: {args.lingers!r} is not a comma-separated list of milliseconds, such as 25,5")
    if min(lingers) < 0:
        parser.error("--lingers: a linger is at least 0 ms")
    if unknown := set(consumers) - {"eager", "stock"}:
        parser.error(f"--consumers: unknown {sorted(unknown)}; the consumers are eager and stock")
    throughput = read_result("throughput")
    # the rates here derive from the ladder's: it must have run on this machine
    this_run = {"boot": boot(), "measured": "now"}
    elsewhere = (
        require_one_machine("latency.py", {"throughput.py": throughput, "this run": this_run}, args.mixed_machines)
        is None
    )
    ladder = throughput["pipeline_eps"]
    # The ladder times a worker alone with a topic filled beforehand; here a publisher shares the cores.
    live = live_maximum(ladder, args.max_seconds, args.lateness, withins[0], consumers[0], args.partitions, lingers[0])
    measured = min(ladder, live)
    rows: list[Run] = []
    for consumer in consumers:
        for within in withins:
            for linger in lingers:
                for fraction in fractions:
                    rate = fraction * measured
                    published, latencies, cpu = measure(
                        rate, args.seconds, args.lateness, within, consumer, args.partitions, linger
                    )
                    rows.append(Run(consumer, within, linger, fraction, rate, published, latencies, cpu))
    worker_wait = Settings.model_fields["fetch_max_wait_ms"].default
    broker_rate = fractions[-1] * measured
    # Faust's own wait, the worker's default, and one between them, at the target's linger; the
    # worker's wait at the other lingers.
    waits = sorted({FAUST_FETCH_WAIT_MS, 500, worker_wait}, reverse=True)
    broker_runs = [(wait, lingers[0]) for wait in waits] + [(worker_wait, linger) for linger in lingers[1:]]
    value_bytes = mean_event_bytes()
    # As long as the measured runs: the broker's delay grows with what its log holds.
    broker = broker_alone(broker_rate, args.seconds, broker_runs, value_bytes, args.partitions)
    command = (
        f"python benchmarks/latency.py --seconds {args.seconds:g} --fractions {args.fractions}"
        f" --lateness {args.lateness} --batch-within {args.batch_within} --consumers {args.consumers}"
        f" --max-seconds {args.max_seconds:g} --lingers {args.lingers}"
        + ("" if args.partitions == DEFAULT_PARTITIONS else f" --partitions {args.partitions}")
        + (" --mixed-machines" if args.mixed_machines else "")
    )
    # Tansu's memory engine costs more the more partitions it serves (the broker-alone table): a
    # deployment sized at fewer partitions (benchmarks/sizing.py) is measured beside the default.
    title, result = "Latency: event to alert at a steady rate", "latency"
    ladder_source = f"{throughput['measured']}, " + (
        f"**on another machine**, boot {throughput.get('boot', 'unknown')}" if elsewhere else "on this machine"
    )
    if args.partitions != DEFAULT_PARTITIONS:
        title, result = f"{title}, {args.partitions} partitions", f"{result}_{args.partitions}_partitions"
    write_section(
        title,
        [
            provenance(command),
            "",
            f"Events published at a steady rate for {args.seconds:g} s into a live worker"
            f" ({args.partitions} partitions), allowed lateness {args.lateness}; each rate a fraction of the"
            f" measured maximum, {measured:,.0f} events/s,"
            " on fresh servers. The maximum is the lesser of two measured rates: the pipeline's"
            f" {ladder:,} events/s in benchmarks/results/throughput.json (a worker alone reading a topic filled"
            f" beforehand; {ladder_source}) and {live:,.0f} events/s, the rate a live worker ({consumers[0]}"
            f" consumer, batch within {withins[0]:g} s) kept up with, its committed offsets counted over the second"
            f" half of {args.max_seconds:g} s while events were published at the ladder's rate by a publisher on the"
            f" same cores, its producer lingering {lingers[0]} ms. The publisher shares this machine's 2 cores"
            " with the worker, Redis and the broker. Publishing goes on for the lateness plus twice the idle"
            " timeout beyond that, as a live stream goes on, and only alerts whose last event came in the"
            " measured period count: without later events, the last second's ends would wait for the idle"
            " timeout, which is a stream's end, not its steady state.",
            "",
            "| consumer | batch within (s) | publisher linger (ms) | fraction | events/s | events | alerts | p50 (s) |"
            " p99 (s) | max (s) | mean (s) | p99, first half (s) | p99, second half (s) | CPU: worker | publisher |"
            " Redis | broker |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *[
                f"| {r.consumer} | {r.batch_within_s:g} | {r.linger_ms} | {r.fraction:.0%} | {r.rate:,.0f} |"
                f" {r.published:,} | {len(r.latencies):,} |"
                f" {percentile(r.latencies, 0.5):.3f} | {percentile(r.latencies, 0.99):.3f} | {max(r.latencies):.3f} |"
                f" {statistics.fmean(r.latencies):.3f} | {p99_by_half(r.latencies)} |"
                f" {r.cpu['worker']:.0%} | {r.cpu['publisher']:.0%} | {r.cpu['redis']:.0%} |"
                f" {r.cpu['broker']:.0%} |"
                for r in rows
            ],
            "",
            "CPU: user plus system time over the publishing, as a share of one core (the machine has"
            " two); the worker is one Python process (its event loop and Faust's consumer thread share one"
            " interpreter lock), the publisher is this benchmark's own process. The halves: the alerts in the"
            " order of their last events, first half and second half.",
            "",
            "The consumer: `eager` is the worker's default (streams/eager_consumer.py, the broker may hold a"
            f" fetch {worker_wait} ms); `stock` is Faust's own, whose broker wait is fixed at"
            f" {FAUST_FETCH_WAIT_MS:,} ms.",
            "",
            "The publisher linger: how long the publisher's producer (a stand-in for a courier feed's) waits to"
            " fill a batch before sending it; the latency above counts it, as each event's time is taken when it"
            " is handed to the producer. Each produce request carries a batch per partition, and Tansu's CPU goes"
            " with the batches: over many partitions a short linger sends many small ones (the broker's CPU in"
            " both tables). Apache Kafka's producers linger 5 ms by default since Kafka 4.0, 0 before.",
            "",
            f"The broker alone, in the same run: a bare aiokafka consumer of its own topic, {broker_rate:,.0f}"
            f" messages/s of {value_bytes:,} bytes (the mean event published above) for {args.seconds:g} s, delay"
            " from send to receipt, by how long the broker may hold a fetch, with the broker's CPU over the run"
            " (a share of one core). The halves show whether the broker delivers later as its log grows (Tansu's"
            " memory engine did when this table was added); the worker's alerts above carry that delay too."
            " Each run on a fresh broker:",
            "",
            "| fetch wait (ms) | publisher linger (ms) | events | p50 (s) | p99 (s) | max (s) | p99, first half (s) |"
            " p99, second half (s) | broker CPU |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *[
                f"| {wait:,} | {linger} | {len(lat):,} | {percentile(lat, 0.5):.3f} | {percentile(lat, 0.99):.3f} |"
                f" {max(lat):.3f} | {p99_by_half(lat)} | {broker_cpu:.0%} |"
                for wait, linger, lat, broker_cpu in broker
            ],
            "",
            "Latency includes the allowed lateness by design: an end is judged once every partition's"
            " event time is that far past it. With the default 6 h, alerts come 6 h of event time after"
            " their last event. Target: p99 <= 2 s at 80% of the maximum rate.",
        ],
    )
    target = rows[len(fractions) - 1]  # the first consumer, batch wait and linger, at the last fraction
    write_result(
        result,
        {
            "rate": target.rate,
            "fraction": target.fraction,
            "linger_ms": target.linger_ms,
            "maximum": {"ladder_eps": ladder, "live_eps": live, "used_eps": measured},
            "alerts": len(target.latencies),
            "p50_s": percentile(target.latencies, 0.5),
            "p99_s": percentile(target.latencies, 0.99),
            "rows": [
                {
                    "consumer": r.consumer,
                    "batch_within_s": r.batch_within_s,
                    "linger_ms": r.linger_ms,
                    "fraction": r.fraction,
                    "rate": r.rate,
                    "p50_s": percentile(r.latencies, 0.5),
                    "p99_s": percentile(r.latencies, 0.99),
                    "cpu": r.cpu,
                }
                for r in rows
            ],
            "broker_alone": [
                {
                    "fetch_max_wait_ms": wait,
                    "linger_ms": linger,
                    "p50_s": percentile(lat, 0.5),
                    "p99_s": percentile(lat, 0.99),
                    "broker_cpu": broker_cpu,
                }
                for wait, linger, lat, broker_cpu in broker
            ],
        },
        command,
    )


if __name__ == "__main__":
    main()
