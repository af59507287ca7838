"""A flooding sender (8,000 suspect parcels from one identity) through the real window store:
its entities stay capped, and every other entity's alerts are exactly what they are without it."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from detectors.entities import Pseudonymizer
from detectors.offline import detect_in_order, parse_valid
from detectors.pipeline import Detector
from detectors.reference import load_reference
from detectors.rules import load_rules
from detectors.store_redis import RedisWindowStore
from detectors.validation import parse
from detectors.windows import WindowConfig
from streams.servers import RunningServer
from tests.replay_expectations import RULES, SECRET, STREAM

pytestmark = pytest.mark.integration
FLOOD = 8_000
CAP = 500


def flood_events(lines: list[bytes]) -> list[bytes]:
    """Clones of one campaign parcel from a sender, building, pickup point and recipients of their own,
    spread over the stream's time span."""
    template: dict[str, Any] = next(
        e
        for e in (orjson.loads(line) for line in lines if line.startswith(b"{"))
        if isinstance(e, dict) and "矿泉水" in str(e.get("items")) and e.get("destination_country") == "TH"
    )
    times = [orjson.loads(line)["event_time"] for line in lines if line.startswith(b'{"schema')]
    start, span = min(times), max(times) - min(times)
    out = []
    for i in range(FLOOD):
        event = copy.deepcopy(template)
        event["parcel_id"] = f"FLOOD{i:08d}"
        event["event_id"] = f"FLOOD{i:08d}:declared"
        event["event_time"] = start + span * i // FLOOD
        event["pickup_point"] = "FLOOD-PP"
        event["sender"] = {
            "name": "洪水",
            "phone": "19900000000",
            "account_id": "acct-flood",
            "address": {
                "country": "CN",
                "province": "广东省",
                "city": "深圳市",
                "district": "南山区",
                "street": "洪水路1号1栋1单元101室",
            },
        }
        event["recipient"]["phone"] = f"+66{i % 50:09d}"
        event["recipient"]["name"] = f"Flood consignee {i % 50}"
        event["recipient"]["address"] = {"country": "TH", "city": "Flood", "street": f"{i % 50} Flood Road"}
        out.append(orjson.dumps(event))
    return out


def test_a_flooding_sender_is_capped_and_changes_no_other_alert(redis_srv: RunningServer) -> None:
    lines = STREAM.read_bytes().splitlines()
    flood = flood_events(lines)
    base = parse_valid(lines)
    flooded = sorted(base + [parse(x) for x in flood], key=lambda e: e.event_time_ms)
    detector = Detector(load_reference(), load_rules(RULES), Pseudonymizer(SECRET.encode()))
    config = WindowConfig.for_rules(detector.rules.longest_window_s, max_parcels_per_entity=CAP)

    async def run(events: list[Any], prefix: str) -> tuple[list[dict[str, Any]], int]:
        client = aioredis.from_url(redis_srv.url)
        try:
            store = RedisWindowStore(client, config, prefix=prefix)
            alerts = await detect_in_order(events, detector, store, config.allowed_lateness_s)
            biggest = 0
            async for key in client.scan_iter(match=f"{prefix}:*:z", count=1000):
                biggest = max(biggest, int(await client.zcard(key)))
            return alerts, biggest
        finally:
            await client.aclose()

    quiet, _ = asyncio.run(run(base, "flood-base"))
    loud, biggest = asyncio.run(run(flooded, "flood-loud"))

    def touched_by_flood(alert: dict[str, Any]) -> bool:
        return any("FLOOD" in str(e["parcel_id"]) for e in alert["evidence"])

    assert biggest == CAP  # the flooder's entities hold the cap, no more
    assert any(touched_by_flood(a) for a in loud)  # the flood itself is seen
    assert sorted(a["alert_id"] for a in loud if not touched_by_flood(a)) == sorted(a["alert_id"] for a in quiet)
