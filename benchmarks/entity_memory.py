"""Redis memory of one entity's window state, by number of parcel records (the per-entity bound).

    .venv/bin/python benchmarks/entity_memory.py
Starts its own redis-server, fills one entity with N records through the real store (Lua), reads
MEMORY USAGE of the entity's two keys and writes the table into BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import redis.asyncio as aioredis

from detectors.entities import EntityRef
from detectors.rules import Rule, RuleSet
from detectors.store import ClockInput, PartitionReport
from detectors.store_redis import RedisWindowStore, entity_keys
from detectors.windows import EntityUpdates, ParcelUpdate, WindowConfig
from streams.servers import redis_server

sys.path.insert(0, str(Path(__file__).parent))
from report import provenance, write_section  # noqa: E402 - benchmarks are scripts, not a package

RULES = RuleSet("bench", (Rule("r", "bench", "sender_phone", 30 * 86400, 1e9, 1, "low", 0),))
T0 = 1_767_225_600_000
CLOCK = ClockInput((PartitionReport(0, None, idle=False),), 1, 3600)  # nothing judged: storage only


async def measure(url: str, sizes: list[int]) -> list[tuple[int, int]]:
    client = aioredis.from_url(url)
    rows = []
    for n in sizes:
        store = RedisWindowStore(client, WindowConfig(max_parcels_per_entity=max(sizes)), prefix=f"m{n}")
        entity = EntityRef("sender_phone", "0f1e2d3c4b5a69788796a5b4")
        updates = tuple(
            ParcelUpdate(
                f"ZTO:ZTO{7_700_000_000 + i:013d}",
                T0 + i * 60_000,
                1.234,
                27.3,
                2,
                f"ZTO:ZTO{7_700_000_000 + i:013d}:picked_up:2026-11-01T09:30:00+08:00",
                False,
                ("COVER_GOODS_OVERWEIGHT", "DENSITY_HIGH"),
            )
            for i in range(n)
        )
        for start in range(0, n, 500):
            await store.apply([EntityUpdates(entity, updates[start : start + 500])], RULES, CLOCK)
        total = 0
        for key in entity_keys(f"m{n}", entity):
            total += int(await client.memory_usage(key) or 0)
        rows.append((n, total))
    await client.aclose()
    return rows


def main() -> None:
    sizes = [1, 10, 100, 1000, 2000]
    with redis_server() as server:
        rows = asyncio.run(measure(server.url, sizes))
    write_section(
        "Window state per entity (Redis MEMORY USAGE of the entity's two keys)",
        [
            provenance("python benchmarks/entity_memory.py"),
            "Records carry 21-byte parcel keys, 60-byte event ids and two reason codes, as courier events do.",
            "",
            "| parcel records | bytes | bytes per record |",
            "|---:|---:|---:|",
            *[f"| {n} | {total} | {total / n:.0f} |" for n, total in rows],
        ],
    )


if __name__ == "__main__":
    main()
