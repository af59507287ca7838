"""Analysts' decisions: kept on the alert, and a false positive silences the rule for the entity."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from detectors.alert_store import RedisAlertStore
from detectors.entities import EntityRef
from detectors.errors import AlertNotFound, FeedbackError
from detectors.feedback import decide
from detectors.rules import Rule, RuleSet
from detectors.store import ClockInput, PartitionReport
from detectors.store_redis import RedisWindowStore
from detectors.windows import EntityUpdates, ParcelUpdate, WindowConfig
from streams.servers import RunningServer

pytestmark = pytest.mark.integration

RULES = RuleSet("t", (Rule("phone_week", "phone, a week", "sender_phone", 7 * 86400, 5.0, 2, "high", 2.0),))
NOW_MS = 1_800_000_000_000
T0 = 1_767_225_600_000


def test_a_false_positive_is_recorded_and_the_entity_raises_nothing_more_for_that_rule(
    redis_srv: RunningServer,
) -> None:
    async def run() -> None:
        client = aioredis.from_url(redis_srv.url)
        windows = RedisWindowStore(client, WindowConfig(allowed_lateness_s=0), prefix="fb")
        alerts = RedisAlertStore(client, prefix="fb")
        phone = EntityRef("sender_phone", "k1")
        clock = ClockInput((PartitionReport(0, None, idle=True),), 1, 0, now_ms=NOW_MS)

        async def feed(first: int) -> list[str]:
            ups = tuple(
                ParcelUpdate(f"p{i}", T0 + i * 3_600_000, 4.0, 5.0, 1, f"e{i}") for i in range(first, first + 2)
            )
            result = await windows.apply([EntityUpdates(phone, ups)], RULES, clock)
            await windows.acknowledge(result.alerts)
            return [a.alert_id for a in result.alerts]

        await windows.apply([], RULES, clock)
        [alert_id] = await feed(0)
        await alerts.save(
            [
                {
                    "alert_id": alert_id,
                    "rule": "phone_week",
                    "entity_type": "sender_phone",
                    "entity_key": "k1",
                    "last_event_time": "2026-01-01T01:00:00Z",
                }
            ],
            NOW_MS,
        )
        assert (await alerts.get(alert_id))["status"] == "new"
        decision = await decide(alerts, windows, alert_id, "false_positive", "Analyst A", "honest shop", NOW_MS, 3600)
        assert decision.suppressed_until_ms == NOW_MS + 3_600_000
        stored = await alerts.get(alert_id)
        assert stored["status"] == "false_positive"
        assert [(d["analyst"], d["note"], d["at_ms"]) for d in stored["decisions"]] == [
            ("Analyst A", "honest shop", NOW_MS)
        ]
        assert [a["status"] async for a in alerts.iter_all()] == ["false_positive"]
        # More parcels of that entity, the sum well past the regrowth: nothing for that rule.
        assert await feed(2) == []
        await decide(alerts, windows, alert_id, "confirmed", "Analyst B", "", NOW_MS + 5)
        assert [d["decision"] for d in (await alerts.get(alert_id))["decisions"]] == ["false_positive", "confirmed"]

        with pytest.raises(AlertNotFound):
            await decide(alerts, windows, "nope", "confirmed", "A", "", NOW_MS)
        with pytest.raises(FeedbackError, match="one of confirmed, false_positive"):
            await decide(alerts, windows, alert_id, "maybe", "A", "", NOW_MS)
        with pytest.raises(FeedbackError, match="analyst"):
            await decide(alerts, windows, alert_id, "confirmed", "  ", "", NOW_MS)
        await client.aclose()

    asyncio.run(run())
