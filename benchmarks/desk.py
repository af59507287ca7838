"""How fast the analyst desk answers with a large alert store.

    .venv/bin/python benchmarks/desk.py [--alerts 10000] [--requests 20]

Fills its own redis-server with ``--alerts`` alert documents: the alerts of a simulated 40-day
stream run through the detector, copied under new ids with their rules, severities, statuses and
times varied, plus the suspect parcels' details. It then starts ``parcelwatch desk`` on a free
loopback port and times, over HTTP, the first queue load (every alert read once), the queue
unfiltered and filtered, an alert page, a case file and the CSV of the whole queue. Writes its
table into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from detectors.alert_store import RedisAlertStore
from detectors.entities import Pseudonymizer
from detectors.offline import detect_in_order, parse_valid
from detectors.parcel_store import RedisParcelStore
from detectors.pipeline import Detector, entity_updates
from detectors.reference import load_reference
from detectors.rules import load_rules
from detectors.scoring import score_batch
from detectors.store_memory import MemoryWindowStore
from detectors.windows import WindowConfig
from streams.servers import desk_server, redis_server
from streams.simulate import simulate

sys.path.insert(0, str(Path(__file__).parent))
from report import ROOT, provenance, write_section  # noqa: E402 - benchmarks are scripts, not a package

SECRET = "desk-benchmark-secret-0001"  # noqa: S105 - pseudonyms of simulated people
SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("new", "new", "new", "confirmed", "false_positive")


def source_alerts(work: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    stream = work / "stream.jsonl"
    simulate(seed=3, days=40, out=stream, scale=0.5)
    events = parse_valid(stream.read_bytes().splitlines())
    detector = Detector(
        load_reference(), load_rules(ROOT / "detectors" / "data" / "rules.toml"), Pseudonymizer(SECRET.encode())
    )
    store = MemoryWindowStore(WindowConfig.for_rules(detector.rules.longest_window_s))
    alerts = asyncio.run(detect_in_order(events, detector, store, store.config.allowed_lateness_s))
    scores = score_batch(events, detector.reference)
    _, _, _, details = entity_updates(events, scores, detector.pseudonymizer)
    return alerts, details


async def fill(url: str, alerts: list[dict[str, Any]], details: list[dict[str, Any]], n: int) -> list[str]:
    client = aioredis.from_url(url)
    store, parcels = RedisAlertStore(client), RedisParcelStore(client)
    rng = random.Random(7)
    await parcels.save(details)
    ids = []
    for start in range(0, n, 1000):
        batch = []
        for i in range(start, min(n, start + 1000)):
            alert = dict(rng.choice(alerts))
            alert["alert_id"] = f"bench{i:08d}"
            alert["severity"] = rng.choice(SEVERITIES)
            day = rng.randrange(1, 28)
            alert["last_event_time"] = f"2026-10-{day:02d}T{rng.randrange(24):02d}:00:00Z"
            batch.append(alert)
            ids.append(alert["alert_id"])
        await store.save(batch, int(time.time() * 1000))
    for alert_id in ids[::7]:
        status = rng.choice(STATUSES)
        if status != "new":
            await store.record_decision(
                alert_id,
                {"decision": status, "analyst": "bench", "note": "", "at_ms": 0, "suppressed_until_ms": None},
            )
    await client.aclose()
    return ids


def timed_get(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 - our own loopback server
        body = response.read()
    return time.perf_counter() - started, len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pw-desk-bench-") as tmp, redis_server() as redis:
        alerts, details = source_alerts(Path(tmp))
        ids = asyncio.run(fill(redis.url, alerts, details, args.alerts))
        env = os.environ | {"PARCELWATCH_REDIS_URL": redis.url}
        with desk_server(env, Path(tmp)) as desk:
            base = desk.url
            cold, _ = timed_get(base + "/api/alerts")
            rng = random.Random(11)
            cases = {
                "queue page (HTML shell)": lambda: base + "/",
                "queue JSON, unfiltered (first 500 of all)": lambda: base + "/api/alerts",
                "queue JSON, one rule and status": lambda: base + "/api/alerts?rule=cluster_7d&status=new",
                "queue JSON, one day": lambda: base + "/api/alerts?date_from=2026-10-05&date_to=2026-10-05",
                "alert page": lambda: f"{base}/alerts/{rng.choice(ids)}",
                "case file": lambda: f"{base}/alerts/{rng.choice(ids)}/case.html",
                f"CSV of the whole queue ({args.alerts} rows)": lambda: base + "/queue.csv",
            }
            rows = []
            for name, make in cases.items():
                samples = [timed_get(make()) for _ in range(args.requests)]
                times = sorted(t for t, _ in samples)
                p95 = times[max(0, int(len(times) * 0.95) - 1)]
                rows.append(
                    f"| {name} | {statistics.median(times) * 1000:.1f} | {p95 * 1000:.1f} "
                    f"| {statistics.median(size for _, size in samples) / 1024:.0f} |"
                )
    body = [
        provenance(f"python benchmarks/desk.py --alerts {args.alerts} --requests {args.requests}"),
        "",
        f"{args.alerts} alerts in the store (copies of {len(alerts)} real alerts of a simulated stream, each with its "
        f"evidence), {len(details)} parcel details. First queue load after start (every alert read once into "
        f"the in-memory index): {cold * 1000:.0f} ms. Then {args.requests} requests each, one at a time:",
        "",
        "| request | median ms | p95 ms | median KiB |",
        "|---|---:|---:|---:|",
        *rows,
    ]
    write_section("Analyst desk with a large alert store", body)


if __name__ == "__main__":
    main()
