"""The alert store: first writer wins, and it tells which alerts were stored before, and when."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from detectors.alert_store import RedisAlertStore
from streams.servers import RunningServer

pytestmark = pytest.mark.integration


def alert(alert_id: str, rule: str = "phone_week") -> dict[str, str]:
    return {"alert_id": alert_id, "rule": rule, "last_event_time": "2026-01-01T01:00:00Z"}


def test_save_keeps_the_first_document_and_names_alerts_stored_before(redis_srv: RunningServer) -> None:
    async def run() -> None:
        client = aioredis.from_url(redis_srv.url)
        store = RedisAlertStore(client, prefix="as1")
        assert await store.save([alert("a"), alert("b")], 1_000) == {}
        # "b" again (a worker that died after storing it), "c" new: only "b" may be on the topic already.
        assert await store.save([alert("b", rule="other"), alert("c")], 5_000) == {"b": 1_000}
        assert (await store.get("b"))["rule"] == "phone_week"
        assert [a["alert_id"] async for a in store.iter_all()] == ["a", "b", "c"]
        await client.aclose()

    asyncio.run(run())
