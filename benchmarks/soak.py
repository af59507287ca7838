"""Soak: millions of events at full speed through the real pipeline (Tansu, one Faust worker,
redis-server), sampling the worker's memory, Redis's memory and the error counters as it goes.

    .venv/bin/python benchmarks/soak.py --events 2000000

One simulated stream (60 days) is published again and again, each copy with its own parcel and
event ids, its event times moved 60 days on and its recipients renumbered, so that event time runs
on for as long as the soak lasts, the same senders keep sending and most recipients are new, as in
life. Writes its table into BENCHMARKS.md and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from streams.replay import committed_progress, ensure_topics, settings_env, start_worker, wait_until_processed
from streams.servers import free_port
from streams.settings import Settings
from streams.simulate import simulate
from streams.wiring import redis_client

sys.path.insert(0, str(Path(__file__).parent))
from local import local_settings  # noqa: E402 - benchmarks are scripts, not a package
from report import provenance, write_section  # noqa: E402

DAY_MS = 86_400_000


def renumbered(recipient: Any, k: int) -> Any:
    """A recipient of copy ``k``: its phone's last eight digits and its account moved by ``k``, the
    same way for every parcel of the copy, so that each copy's customers are new to the worker."""
    if not isinstance(recipient, dict):
        return recipient
    recipient = dict(recipient)
    phone = recipient.get("phone")
    if isinstance(phone, str) and len(phone) >= 8 and phone[-8:].isascii() and phone[-8:].isdigit():
        recipient["phone"] = f"{phone[:-8]}{(int(phone[-8:]) + k * 7_777_777) % 10**8:08d}"
    if isinstance(recipient.get("account_id"), str):
        recipient["account_id"] = f"{recipient['account_id']}~{k}"
    return recipient


def copies(lines: list[bytes], total: int) -> Any:
    """``total`` events: copy k of the stream has ids suffixed ``~k``, times moved k x 60 days on, and
    its recipients renumbered. Shops send again and again, but most recipients are new to a worker:
    copies with the same recipients would find them in its caches after the first copy, and read
    faster than a real stream does (the pseudonymizer's caches, detectors/entities.py)."""
    valid = []
    for line in lines:
        with contextlib.suppress(orjson.JSONDecodeError):
            event = orjson.loads(line)
            if isinstance(event, dict) and isinstance(event.get("event_time"), int):
                valid.append(event)  # the malformed lines the simulator adds are for other tests
    sent, k = 0, 0
    while sent < total:
        for event in valid:
            if sent >= total:
                return
            clone = dict(event)
            if k:
                clone["parcel_id"] = f"{event['parcel_id']}~{k}"
                clone["event_id"] = f"{event['event_id']}~{k}"
                clone["event_time"] = event["event_time"] + k * 60 * DAY_MS
                clone["recipient"] = renumbered(event.get("recipient"), k)
            yield clone["parcel_id"], orjson.dumps(clone)
            sent += 1
        k += 1


async def publish(settings: Settings, lines: list[bytes], total: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        pending = []
        for key, value in tqdm(copies(lines, total), total=total, desc="publishing", unit="ev", mininterval=5):
            pending.append(await producer.send(settings.topic("canonical"), value, key=str(key).encode()))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def metric(port: int, name: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # noqa: S310
            text = response.read().decode()
    except OSError:
        return float("nan")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


async def redis_memory(settings: Settings) -> tuple[int, int]:
    client = redis_client(settings)
    try:
        return int((await client.info("memory"))["used_memory"]), int(await client.dbsize())
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--every-s", type=float, default=30.0, help="seconds between samples")
    args = parser.parse_args()
    samples: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="pw-soak-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        settings = local_settings(stack, work, metrics_port=free_port())
        stream = work / "stream.jsonl"
        simulate(seed=31, days=60, out=stream, scale=4.0)
        lines = stream.read_bytes().splitlines()
        asyncio.run(ensure_topics(settings))
        started = time.monotonic()
        asyncio.run(publish(settings, lines, args.events))
        published_s = time.monotonic() - started
        worker = start_worker(stack, settings_env(settings) | {"PARCELWATCH_DATA_DIR": str(work / "w")}, work / "w.log")
        began = time.monotonic()
        progress = tqdm(total=args.events, desc="processing", unit="ev", mininterval=5)
        while True:
            # The end is watched for twice a second, so that the processing time is not rounded up
            # to the next sample; between, a sample every ``every_s``.
            due = time.monotonic() + args.every_s
            while True:
                time.sleep(0.5)
                if worker.poll() is not None:
                    raise SystemExit(f"the worker exited with code {worker.returncode}; see {work / 'w.log'}")
                done, total = asyncio.run(committed_progress(settings))
                if done >= total or time.monotonic() >= due:
                    break
            memory, keys = asyncio.run(redis_memory(settings))
            samples.append(
                {
                    "s": time.monotonic() - began,
                    "done": done,
                    "rss_mb": rss_mb(worker.pid),
                    "redis_mb": memory / 2**20,
                    "keys": keys,
                    "redis_errors": metric(settings.metrics_port, "parcelwatch_redis_errors_total"),
                    "broker_errors": metric(settings.metrics_port, "parcelwatch_broker_errors_total"),
                }
            )
            progress.n = done
            progress.refresh()
            if done >= total:
                break
        progress.close()
        processed_s = samples[-1]["s"]
        asyncio.run(wait_until_processed(settings, 600, worker))
        log_lines = (work / "w.log").read_text().splitlines()
        errors = sum(1 for line in log_lines if '"level": "ERROR"' in line)
        criticals = sum(1 for line in log_lines if '"level": "CRITICAL"' in line)
        if errors or criticals:
            # the work directory goes with the run: the log is kept where it can be read
            kept = Path(tempfile.gettempdir()) / f"pw-soak-worker-{time.strftime('%Y%m%dT%H%M%S')}.log"
            shutil.copyfile(work / "w.log", kept)
            print(f"the worker logged {errors} ERROR and {criticals} CRITICAL lines; its log: {kept}", file=sys.stderr)

    rate = args.events / processed_s
    quarter = [s["rss_mb"] for s in samples if s["done"] >= 0.25 * args.events]
    rss_growth = (quarter[-1] - quarter[0]) / quarter[0] if len(quarter) > 1 else float("nan")
    rows = [samples[i] for i in sorted({round(k * (len(samples) - 1) / 10) for k in range(11)})]
    body = [
        provenance(f"python benchmarks/soak.py --events {args.events}"),
        "",
        f"{args.events:,} events (one 60-day simulated stream of {len(lines):,} lines, published again with "
        f"new ids, times moved 60 days on and new recipients per copy) published in {published_s:.0f} s, then "
        f"processed by one worker in {processed_s:.0f} s: {rate:,.0f} events/s on average.",
        "",
        "| seconds | events committed | worker RSS (MB) | Redis used_memory (MB) | Redis keys | Redis errors "
        "| broker errors |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {s['s']:.0f} | {s['done']:,} | {s['rss_mb']:.0f} | {s['redis_mb']:.0f} | {s['keys']:,} | "
            f"{s['redis_errors']:.0f} | {s['broker_errors']:.0f} |"
            for s in rows
        ),
        "",
        f"- Worker RSS from a quarter of the way to the end: {quarter[0]:.0f} -> {quarter[-1]:.0f} MB "
        f"({rss_growth:+.1%}); median over the run {statistics.median(s['rss_mb'] for s in samples):.0f} MB.",
        f"- Worker log: {errors} ERROR and {criticals} CRITICAL lines.",
        "- Redis grows with the parked records of parcels that never counted (one string per parcel, kept a "
        "retention of wall clock after its last write: most of the keys), with the suspect parcels' details "
        "(`<prefix>:parcel:<id>`, kept 180 days of wall clock for the desk) and with the alert store; window "
        "state per entity is capped and pruned in event time. This run compresses hundreds of days of event "
        "time into minutes of wall clock, so nothing here expires by wall clock.",
    ]
    write_section("Soak: millions of events through one worker", body)
    print(
        orjson.dumps(
            {
                "events": args.events,
                "events_per_s": round(rate),
                "rss_mb_first_quarter": round(quarter[0]),
                "rss_mb_last": round(quarter[-1]),
                "redis_mb_last": round(samples[-1]["redis_mb"]),
                "redis_errors": samples[-1]["redis_errors"],
                "broker_errors": samples[-1]["broker_errors"],
                "error_log_lines": errors + criticals,
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
