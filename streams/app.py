"""The Faust app: adapter agents (raw topics -> canonical) and the detector agent (canonical -> alerts).

State lives in Redis, not in Faust tables, so any worker can take any partition and a crash
loses nothing: offsets are committed only after the batch's window updates are in Redis.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn

import faust
import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from detectors.errors import DetectorError
from detectors.parcel_store import RedisParcelStore
from detectors.rules import RuleSet, parse_duration
from streams.adapters import ADAPTERS, Adapter, Rejected
from streams.batch_intake import BatchIntake
from streams.detection import Detection, StagedBatch, StreamClock
from streams.eager_consumer import App as EagerApp
from streams.health import Health
from streams.kafka_security import aiokafka_options, faust_credentials
from streams.metrics import Metrics
from streams.retry import with_retry
from streams.rules_control import follow_rules
from streams.settings import Settings
from streams.topic_reader import offsets_since, read_topic
from streams.wiring import build_detector, build_stores, redis_client, redis_memory, window_config

log = logging.getLogger("parcelwatch.worker")


def dead_letter_record(
    reason: str,
    detail: str,
    *,
    stage: str,
    topic: str,
    partition: int,
    offset: int,
    raw: bytes | None,
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


LOG_LEVELS = {"crit": "CRITICAL", "error": "ERROR", "warn": "WARNING", "info": "INFO", "debug": "DEBUG"}


def logging_config(level: str) -> dict[str, Any]:
    """JSON lines on stderr; records carry their extra fields (offsets, reasons, alert ids)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            }
        },
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": LOG_LEVELS.get(level, "INFO"), "handlers": ["stderr"]},
    }


def exit_uncommitted(stage: str, exc: BaseException) -> NoReturn:
    """An error no retry can cure (a bug, not bad input: bad input is dead-lettered) ends the process.

    Faust would acknowledge the events of a crashed agent and restart it, and their offsets would
    be committed unprocessed: lost parcels. Exiting at once commits nothing more, and the restarted
    worker (or another of the group) reprocesses the batch; updates are idempotent per parcel.
    """
    log.critical("%s failed; exiting without committing its events", stage, exc_info=exc)
    logging.shutdown()
    os._exit(70)  # EX_SOFTWARE


def create_app(settings: Settings, metrics: Metrics, health: Health) -> faust.App:
    detector = build_detector(settings)
    metrics.known_rules(detector.rules)
    make_app: Callable[..., faust.App] = faust.App
    if settings.faust_consumer == "eager":
        make_app = functools.partial(EagerApp, fetch_max_wait_ms=settings.fetch_max_wait_ms)
    app = make_app(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=faust_credentials(settings),
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        # Faust's defaults (60 s session, 60 s rebalance) make a new group take ~30 s to form;
        # shorter timeouts let replays and scaled-out workers start in seconds.
        broker_session_timeout=10.0,
        broker_rebalance_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_commit_interval=settings.commit_interval_s,
        logging_config=logging_config(settings.log_level),
    )
    canonical = app.topic(settings.topic("canonical"), key_serializer="raw", value_serializer="raw")
    deadletter = app.topic(settings.topic("deadletter"), key_serializer="raw", value_serializer="raw")
    alerts_topic = app.topic(settings.topic("alerts"), key_serializer="raw", value_serializer="raw")

    async def dead_letter(
        reason: str, detail: str, stage: str, msg: Any, raw: bytes | None, record_no: int | None = None
    ) -> None:
        metrics.dead_letters.labels(stage=stage, reason=reason).inc()
        # The detail may quote field values (personal data): only the reason and position are logged.
        log.info(
            "dead letter",
            extra={
                "reason": reason,
                "stage": stage,
                "source_topic": msg.topic,
                "source_partition": msg.partition,
                "source_offset": msg.offset,
                "record_no": record_no,
            },
        )
        record = dead_letter_record(
            reason,
            detail,
            stage=stage,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            raw=raw,
            record_no=record_no,
        )
        await deadletter.send(value=record)

    def broker_error(operation: str) -> None:
        metrics.broker_errors.labels(operation=operation).inc()

    def adapter_agent(adapter: Adapter) -> Callable[[Any], Awaitable[None]]:
        async def adapt(stream: Any) -> None:
            async for event in stream.events():
                msg = event.message
                metrics.events_consumed.labels(source=adapter.name).inc()
                for result in adapter.parse(event.value):
                    if isinstance(result, Rejected):
                        raw = result.raw if result.raw is not None else event.value
                        metrics.events_processed.labels(source=adapter.name, outcome="dead_letter").inc()
                        await dead_letter(
                            result.reason, result.detail, f"adapter:{adapter.name}", msg, raw, result.record_no
                        )
                        continue
                    metrics.events_processed.labels(source=adapter.name, outcome="adapted").inc()
                    parcel = result.get("parcel_id")
                    send = functools.partial(
                        canonical.send, key=str(parcel).encode() if parcel else None, value=orjson.dumps(result)
                    )
                    try:
                        await with_retry("canonical publish", send, on_error=broker_error)
                    except Exception as exc:  # noqa: BLE001 - see exit_uncommitted
                        exit_uncommitted(f"adapter {adapter.name}", exc)

        adapt.__name__ = f"adapt_{adapter.name.replace('-', '_')}"
        return adapt

    for adapter in ADAPTERS.values():
        if adapter.name != "canonical":
            source = app.topic(settings.topic(adapter.topic_suffix), key_serializer="raw", value_serializer="raw")
            app.agent(source, name=f"parcelwatch.adapt.{adapter.name}")(adapter_agent(adapter))

    client = redis_client(settings)
    window_store, alert_store = build_stores(settings, detector, client)

    async def send_alerts(alerts: list[dict[str, Any]]) -> None:
        """All of a batch's alerts in flight at once, then every delivery awaited: a crash between
        publishing and acknowledging (which republishes them) has one broker round trip to hit, not one
        per alert. They are acknowledged in Redis only once the broker has them all."""
        pending = [await alerts_topic.send(key=a["alert_id"].encode(), value=orjson.dumps(a)) for a in alerts]
        await asyncio.gather(*pending)

    async def published_since(time_ms: int) -> set[str]:
        topic = alerts_topic.get_topic_name()
        start = await offsets_since(settings, topic, time_ms)
        values = await read_topic(settings, topic, start, only=set(start))
        return {orjson.loads(value)["alert_id"] for value in values}

    admin: list[AIOKafkaAdminClient] = []

    async def committed_offset(tp: Any) -> int | None:
        """The group's committed offset of ``tp`` (explicit partitions: Tansu refuses the all-partitions form)."""
        if not admin:
            client_ = AIOKafkaAdminClient(**aiokafka_options(settings))
            await client_.start()
            admin.append(client_)
        try:
            offsets = await admin[0].list_consumer_group_offsets(settings.app_id, partitions=[tp])
        except KafkaError as exc:
            log.warning("could not read the committed offset of %s: %s", tp, exc)
            return None
        found = offsets.get(TopicPartition(tp.topic, tp.partition))
        return found.offset if found is not None and found.offset >= 0 else 0

    detection = Detection(
        detector=detector,
        window_store=window_store,
        alert_store=alert_store,
        parcel_store=RedisParcelStore(client, prefix=settings.redis_prefix),
        clock=StreamClock(idle_after_s=settings.idle_after_s),
        lateness_s=parse_duration(settings.allowed_lateness, "PARCELWATCH_ALLOWED_LATENESS"),
        send_dead_letter=dead_letter,
        send_alerts=send_alerts,
        published_since=published_since,
        committed_offset=committed_offset,
        metrics=metrics,
        health=health,
    )

    async def use_rules(rules: RuleSet) -> None:
        if rules == detection.detector.rules:
            return
        await detection.set_rules(rules, window_config(settings, rules))
        metrics.known_rules(rules)
        log.info("rules in force", extra={"version": rules.version, "rules": len(rules.rules)})

    def refused(message: str) -> None:
        metrics.rules_refused.inc()
        log.error("rules refused; the rules in force stay", extra={"error": message})

    @app.task
    async def rules_control() -> None:
        await follow_rules(settings, use_rules, refused)

    def partitions() -> int:
        return app.consumer.topic_partitions(canonical.get_topic_name()) or settings.partitions

    async def detect_batches(
        batches: AsyncIterator[list[Any]], acknowledge: Callable[[list[Any]], Awaitable[None]]
    ) -> None:
        """Two stages in flight: the next batch is staged (validated, scored, linked) while the
        previous one's store call runs in Redis. A batch's messages are acknowledged, so their
        offsets may be committed, only once it is applied."""

        async def apply(staged: StagedBatch, messages: list[Any]) -> None:
            try:
                await detection.apply(staged)
            except Exception as exc:  # noqa: BLE001 - see exit_uncommitted
                exit_uncommitted("detector", exc)
            await acknowledge(messages)

        applying: asyncio.Task[None] | None = None
        try:
            async for messages in batches:
                try:
                    staged = await detection.stage(messages, app.consumer, canonical.get_topic_name(), partitions())
                except Exception as exc:  # noqa: BLE001 - see exit_uncommitted
                    exit_uncommitted("detector", exc)
                if applying is not None:
                    await applying
                applying = asyncio.ensure_future(apply(staged, messages))
                # The store call goes out before the next batch is taken and staged, so the two overlap.
                await asyncio.sleep(0)
        finally:
            if applying is not None:
                await applying

    if settings.intake == "batch":
        intake = BatchIntake.for_worker(app, canonical.get_topic_name(), settings.batch_size)
        app.topics.add(canonical)  # subscribed without an agent: the intake takes its messages
        intake.install()

        async def taken() -> AsyncIterator[list[Any]]:
            while True:
                yield await intake.take(settings.batch_within_s)

        async def acknowledge_messages(messages: list[Any]) -> None:
            intake.acknowledge(messages)

        @app.task
        async def detect() -> None:
            await detect_batches(taken(), acknowledge_messages)

    else:

        @app.agent(canonical, name="parcelwatch.detect")
        async def detect_stream(stream: Any) -> None:
            """``noack_take`` leaves acknowledging the events to us."""
            by_message: dict[int, Any] = {}

            async def batches() -> AsyncIterator[list[Any]]:
                async for events in stream.noack_take(settings.batch_size, within=settings.batch_within_s):
                    by_message.update((id(event.message), event) for event in events)
                    yield [event.message for event in events]

            async def acknowledge_events(messages: list[Any]) -> None:
                for message in messages:
                    await stream.ack(by_message.pop(id(message)))

            await detect_batches(batches(), acknowledge_events)

    @app.timer(interval=1.0, name="parcelwatch.clock")
    async def clock_tick() -> None:
        health.beat()
        try:
            await detection.tick(app.consumer, canonical.get_topic_name(), partitions())
        except DetectorError as exc:  # no retry cures it (a shard count the deployment refuses, say)
            exit_uncommitted("clock tick", exc)

    @app.timer(interval=15.0, name="parcelwatch.redis_sample")
    async def sample_redis() -> None:
        try:
            used, keys = await redis_memory(client)
        except (RedisError, OSError) as exc:
            metrics.redis_errors.labels(operation="sample").inc()
            health.redis_ok = False
            log.warning("Redis sample failed", extra={"error": type(exc).__name__})
            return
        health.redis_ok = True
        metrics.redis_memory.set(used)
        metrics.redis_keys.set(keys)

    @app.task
    async def started() -> None:
        try:
            await client.ping()
            health.redis_ok = True
        except (RedisError, OSError):
            health.redis_ok = False
        health.started = True

    @app.on_partitions_assigned.connect
    async def assigned(app: Any, assigned: Any, **_: Any) -> None:
        health.joined = True

    @app.on_before_shutdown.connect
    async def stopping(app: Any, **_: Any) -> None:
        health.stopping = True
        for client_ in admin:
            await client_.close()
        admin.clear()

    return app
