"""A worker that died between publishing its alerts and acknowledging them: the alerts are handed out
again, and a worker publishes only those not on the alerts topic already.

The dead worker is played here, step by step as the detector stage takes them (window store call,
alert store, publish), so that it dies exactly where a ``kill -9`` only sometimes lands: after
publishing some of its alerts and before acknowledging any.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from detectors.offline import parse_valid
from detectors.pipeline import process_batch
from detectors.store import ClockInput, PartitionReport
from streams.kafka_security import aiokafka_options
from streams.replay import ensure_topics
from streams.servers import free_port
from streams.settings import Settings
from streams.topic_reader import read_topic
from streams.wiring import build_detector, build_stores, redis_client
from tests.conftest import worker_process
from tests.replay_expectations import STREAM
from tests.streams.fault_harness import wait_for
from tests.streams.test_metrics import scrape

pytestmark = pytest.mark.integration


async def die_after_publishing(settings: Settings, published_share: float) -> tuple[list[str], list[str]]:
    """Raise the recorded stream's alerts, store them all, publish the first ``published_share`` of
    them and stop without acknowledging any. Returns (all raised ids, published ids)."""
    detector = build_detector(settings)
    client = redis_client(settings)
    window_store, alert_store = build_stores(settings, detector, client)
    events = parse_valid(STREAM.read_bytes().splitlines())
    latest = max(e.event_time_ms for e in events)
    alerts: dict[str, dict[str, Any]] = {}
    due: tuple[Any, ...] = ()
    for chunk in [events, []]:
        while True:
            clock = ClockInput((PartitionReport(0, latest, idle=True),), 1, 6 * 3600, due, int(time.time() * 1000))
            outcome = await process_batch(chunk, detector, window_store, clock)
            alerts.update((a["alert_id"], a) for a in outcome.alerts)
            due = outcome.due
            if chunk or not due:
                break
    raised = list(alerts.values())
    assert await alert_store.save(raised, int(time.time() * 1000)) == {}
    await client.aclose()
    published = raised[: int(len(raised) * published_share)]
    producer = AIOKafkaProducer(**aiokafka_options(settings))
    await producer.start()
    try:
        for alert in published:
            await producer.send_and_wait(
                settings.topic("alerts"), key=alert["alert_id"].encode(), value=orjson.dumps(alert)
            )
    finally:
        await producer.stop()
    return [a["alert_id"] for a in raised], [a["alert_id"] for a in published]


def test_alerts_a_dead_worker_published_are_not_published_again(live_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    settings = live_settings.model_copy(update={"alert_reclaim_s": 1, "metrics_port": port})
    asyncio.run(ensure_topics(settings))
    raised, published = asyncio.run(die_after_publishing(settings, published_share=0.6))
    assert len(raised) > 20 and 0 < len(published) < len(raised)

    claims = f"{settings.redis_prefix}:claims"

    async def unacknowledged() -> int:
        client = redis_client(settings)
        try:
            return int(await client.zcard(claims))
        finally:
            await client.aclose()

    assert asyncio.run(unacknowledged()) > 0
    with worker_process(settings, tmp_path / "worker.log"):
        # No events come: the worker's clock ticks hand the dead worker's alerts out again.
        wait_for("the dead worker's alerts acknowledged", lambda: asyncio.run(unacknowledged()) == 0, 90, 0.5)
        values = scrape(port)
    on_topic = Counter(orjson.loads(v)["alert_id"] for v in asyncio.run(read_topic(settings, settings.topic("alerts"))))
    assert on_topic == Counter(raised), "each alert exactly once on the topic"
    assert values[("parcelwatch_alerts_already_published_total", ())] == len(published)
