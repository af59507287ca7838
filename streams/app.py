"""The Faust app: adapter agents (raw topics -> canonical) and the detector agent (canonical -> alerts).

State lives in Redis, not in Faust tables, so any worker can take any partition and a crash
loses nothing: offsets are committed only after the batch's window updates are in Redis.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import faust
import orjson

from detectors.errors import InvalidEvent, StoreError
from detectors.events import ParcelEvent
from detectors.pipeline import process_batch
from detectors.validation import to_event
from streams.adapters import ADAPTERS, Adapter, Rejected
from streams.settings import Settings
from streams.wiring import build_detector, build_stores, redis_client

log = logging.getLogger("parcelwatch.worker")
T = TypeVar("T")


def dead_letter_record(
    reason: str, detail: str, *, stage: str, topic: str, partition: int, offset: int, raw: bytes | None,
    record_no: int | None = None,
) -> bytes:
    """The dead-letter record: enough to find, read and replay the bad input."""
    return orjson.dumps(
        {
            "reason": reason,
            "detail": detail,
            "stage": stage,
            "source_topic": topic,
            "source_partition": partition,
            "source_offset": offset,
            "record_no": record_no,
            "raw_b64": base64.b64encode(raw).decode() if raw is not None else None,
        }
    )


async def with_retry(what: str, action: Callable[[], Awaitable[T]]) -> T:
    """Retry a Redis step with capped exponential backoff; the batch (and the offsets) wait."""
    delay = 0.2
    while True:
        try:
            return await action()
        except StoreError as exc:
            log.warning("%s failed (%s); retrying in %.1f s, offsets are not committed meanwhile", what, exc, delay)
        except (OSError, ConnectionError) as exc:
            log.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


def create_app(settings: Settings) -> faust.App:
    detector = build_detector(settings)
    app = faust.App(
        settings.app_id,
        broker=settings.broker_url,
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
    )
    canonical = app.topic(settings.topic("canonical"), key_serializer="raw", value_serializer="raw")
    deadletter = app.topic(settings.topic("deadletter"), key_serializer="raw", value_serializer="raw")
    alerts_topic = app.topic(settings.topic("alerts"), key_serializer="raw", value_serializer="raw")

    async def send_dead_letter(record: bytes) -> None:
        await deadletter.send(value=record)

    def adapter_agent(adapter: Adapter) -> Callable[[Any], Awaitable[None]]:
        async def adapt(stream: Any) -> None:
            async for event in stream.events():
                msg = event.message
                for result in adapter.parse(event.value):
                    if isinstance(result, Rejected):
                        await send_dead_letter(
                            dead_letter_record(
                                result.reason, result.detail, stage=f"adapter:{adapter.name}", topic=msg.topic,
                                partition=msg.partition, offset=msg.offset,
                                raw=result.raw if result.raw is not None else event.value, record_no=result.record_no,
                            )
                        )
                        continue
                    parcel = result.get("parcel_id")
                    await canonical.send(
                        key=str(parcel).encode() if parcel else None, value=orjson.dumps(result)
                    )

        adapt.__name__ = f"adapt_{adapter.name.replace('-', '_')}"
        return adapt

    for adapter in ADAPTERS.values():
        if adapter.name != "canonical":
            source = app.topic(settings.topic(adapter.topic_suffix), key_serializer="raw", value_serializer="raw")
            app.agent(source, name=f"parcelwatch.adapt.{adapter.name}")(adapter_agent(adapter))

    @app.agent(canonical, name="parcelwatch.detect")
    async def detect(stream: Any) -> None:
        client = redis_client(settings)
        window_store, alert_store = build_stores(settings, detector, client)
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            valid: list[ParcelEvent] = []
            for event in events:
                msg = event.message
                try:
                    valid.append(to_event(_decode(event.value)))
                except InvalidEvent as exc:
                    await send_dead_letter(
                        dead_letter_record(
                            exc.reason, exc.detail, stage="validate", topic=msg.topic, partition=msg.partition,
                            offset=msg.offset, raw=event.value,
                        )
                    )
            if not valid:
                continue
            outcome = await with_retry("window update", lambda: process_batch(valid, detector, window_store))
            if outcome.alerts:
                await with_retry("alert store", lambda: alert_store.save(outcome.alerts))
                for alert in outcome.alerts:
                    delivered = await alerts_topic.send(key=alert["alert_id"].encode(), value=orjson.dumps(alert))
                    await delivered
                await with_retry("alert acknowledgement", lambda: window_store.acknowledge(outcome.raised))
                for alert in outcome.alerts:
                    log.info(
                        "alert %s rule=%s severity=%s episode=%s parcels=%d suspect_kg=%.1f",
                        alert["alert_id"], alert["rule"], alert["severity"], alert["episode"],
                        alert["parcel_count"], alert["suspect_mass_kg"],
                    )

    return app


def _decode(value: Any) -> dict[str, Any]:
    from detectors.validation import decode

    if isinstance(value, bytes | bytearray):
        return decode(bytes(value))
    raise InvalidEvent("not_json", f"message value has type {type(value).__name__}")
