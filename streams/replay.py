"""Replay recorded streams through the real pipeline: broker, worker, Redis.

Publishing goes to the raw topic of each input's format; completion is read off the broker
(the consumer group has committed every offset of every pipeline topic, twice in a row), so the
same code works with a worker started here or workers started elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from tqdm import tqdm

from detectors.alert_store import RedisAlertStore
from streams.adapters import ADAPTERS, Rejected
from streams.errors import StreamsError
from streams.kafka_security import aiokafka_options
from streams.servers import spawn
from streams.settings import Settings
from streams.topic_reader import end_offsets, read_topic
from streams.wiring import redis_client


@dataclass
class ReplayInput:
    path: Path
    format: str

    def messages(self) -> Iterator[bytes]:
        if not self.path.is_file():
            raise StreamsError(f"input {self.path} does not exist or is not a file")
        return ADAPTERS[self.format].split(self.path)


@dataclass
class ReplaySummary:
    inputs: list[str]
    messages_published: int = 0
    events_read: int = 0
    parcels: int = 0
    dead_lettered: int = 0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    alerts: int = 0
    new_alerts: int = 0
    seconds: float = 0.0

    def as_json(self) -> bytes:
        return orjson.dumps(self.__dict__, option=orjson.OPT_SORT_KEYS)


def pipeline_topics(settings: Settings) -> list[str]:
    return [settings.topic(a.topic_suffix) for a in ADAPTERS.values()] + [
        settings.topic("deadletter"),
        settings.topic("alerts"),
    ]


async def ensure_topics(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in pipeline_topics(settings) if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(t, num_partitions=settings.partitions, replication_factor=1) for t in missing]
                )
    finally:
        await admin.close()


def _key(fmt: str, message: bytes) -> bytes | None:
    if fmt != "canonical":
        return None
    try:
        value = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    parcel = value.get("parcel_id") if isinstance(value, dict) else None
    return str(parcel).encode() if parcel else None


async def publish(settings: Settings, inputs: Sequence[ReplayInput], summary: ReplaySummary) -> None:
    producer = AIOKafkaProducer(
        **aiokafka_options(settings), linger_ms=10, max_batch_size=1 << 20, max_request_size=8 << 20
    )
    await producer.start()
    parcels: set[tuple[str, str]] = set()
    try:
        progress = tqdm(desc="publishing", unit="msg", disable=not sys.stderr.isatty())
        pending: list[asyncio.Future[Any]] = []
        for item in inputs:
            adapter = ADAPTERS[item.format]
            topic = settings.topic(adapter.topic_suffix)
            for message in item.messages():
                for result in adapter.parse(message):
                    summary.events_read += 1
                    if not isinstance(result, Rejected) and result.get("parcel_id") and result.get("courier"):
                        parcels.add((str(result["courier"]), str(result["parcel_id"])))
                pending.append(await producer.send(topic, message, key=_key(item.format, message)))
                summary.messages_published += 1
                progress.update()
                if len(pending) >= 5000:
                    await asyncio.gather(*pending)
                    pending.clear()
        await asyncio.gather(*pending)
        progress.close()
    finally:
        await producer.stop()
    summary.parcels = len(parcels)


async def committed_progress(
    settings: Settings, admin: AIOKafkaAdminClient | None = None, ends: dict[TopicPartition, int] | None = None
) -> tuple[int, int]:
    """(messages of the input topics the consumer group has committed, messages in them).

    ``ends``: the input topics' end offsets (``input_ends``), where they no longer move: read once,
    not at each call (a consumer of their own each time)."""
    own = admin is None
    if admin is None:
        admin = AIOKafkaAdminClient(**aiokafka_options(settings))
        await admin.start()
    try:
        if ends is None:
            ends = await input_ends(settings)
        # Explicit partitions: Tansu closes the connection on the all-partitions form.
        committed = await admin.list_consumer_group_offsets(settings.app_id, partitions=list(ends))
    finally:
        if own:
            await admin.close()
    done = sum(min(max(committed[tp].offset, 0), end) if tp in committed else 0 for tp, end in ends.items())
    return done, sum(ends.values())


async def input_ends(settings: Settings) -> dict[TopicPartition, int]:
    """End offsets of every partition of the input topics."""
    return await end_offsets(settings, [settings.topic(a.topic_suffix) for a in ADAPTERS.values()])


async def wait_until_processed(
    settings: Settings, timeout_s: float, worker: subprocess.Popen[bytes] | None = None
) -> None:
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    client = redis_client(settings)
    deadline = time.monotonic() + timeout_s
    settled = 0
    progress = tqdm(desc="processing", unit="msg", disable=not sys.stderr.isatty())
    try:
        while True:
            if worker is not None and worker.poll() is not None:
                raise StreamsError(f"the worker exited with code {worker.returncode} before the replay finished")
            done, total = await committed_progress(settings, admin)
            progress.total = total
            progress.n = done
            progress.refresh()
            # Every offset committed, no cluster link left to fold in, no window end left to judge
            # (the idle flush has run) and no alert left unacknowledged (a dead worker's are reclaimed).
            due = 0
            for key in ("due", "cl:pending", "claims"):
                due += int(await client.zcard(f"{settings.redis_prefix}:{key}"))
            settled = settled + 1 if done == total and due == 0 else 0
            if settled >= 2:
                return
            if time.monotonic() > deadline:
                raise StreamsError(
                    f"replay not finished after {timeout_s:.0f} s: {done} of {total} messages committed by "
                    f"consumer group {settings.app_id!r}, {due} entities, cluster links or alerts still to settle; "
                    f"is a worker running against {settings.broker_url}?"
                )
            await asyncio.sleep(1.0)
    finally:
        progress.close()
        await admin.close()
        await client.aclose()


async def read_dead_letters(settings: Settings, start: dict[TopicPartition, int]) -> Counter[str]:
    return Counter(
        orjson.loads(value)["reason"] for value in await read_topic(settings, settings.topic("deadletter"), start)
    )


WORKER_ARGV = (sys.executable, "-m", "streams.cli", "worker")


def start_worker(
    stack: contextlib.ExitStack, settings_env: dict[str, str], log_path: Path, argv: Sequence[str] = WORKER_ARGV
) -> subprocess.Popen[bytes]:
    """A ``parcelwatch worker`` child (``argv``: how it is started), stopped (SIGTERM, then SIGKILL
    after 30 s) when ``stack`` closes."""
    env = {**os.environ, **settings_env}
    with log_path.open("ab") as log:
        return spawn(
            stack,
            list(argv),
            stop_timeout_s=30.0,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def export_alerts(settings: Settings, out: Path) -> int:
    client = redis_client(settings)
    store = RedisAlertStore(client, prefix=settings.redis_prefix)
    count = 0
    try:
        with out.open("wb") as handle:
            async for alert in store.iter_all():
                handle.write(orjson.dumps(alert) + b"\n")
                count += 1
    finally:
        await client.aclose()
    return count


async def alert_ids(settings: Settings) -> set[str]:
    """The ids in the alert store."""
    client = redis_client(settings)
    try:
        return {a["alert_id"] async for a in RedisAlertStore(client, prefix=settings.redis_prefix).iter_all()}
    finally:
        await client.aclose()


def settings_env(settings: Settings) -> dict[str, str]:
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"PARCELWATCH_{name.upper()}"] = str(value)
    return env


def run_replay(
    settings: Settings,
    inputs: Sequence[ReplayInput],
    alerts_out: Path | None,
    *,
    with_worker: bool = True,
    timeout_s: float = 900.0,
) -> ReplaySummary:
    summary = ReplaySummary(inputs=[str(i.path) for i in inputs])
    started = time.monotonic()

    async def before() -> tuple[dict[TopicPartition, int], set[str]]:
        await ensure_topics(settings)
        return await end_offsets(settings, [settings.topic("deadletter")]), await alert_ids(settings)

    dlq_start, known_alerts = asyncio.run(before())
    with contextlib.ExitStack() as stack:
        # Publish first, start the worker after: a worker idle on empty partitions would let the
        # partitions it reads first move time past the others' old events (docs/windows.md).
        asyncio.run(publish(settings, inputs, summary))
        worker = None
        if with_worker:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pw-worker-")))
            env = settings_env(settings) | {"PARCELWATCH_DATA_DIR": str(workdir / "data")}
            worker = start_worker(stack, env, workdir / "worker.log")
        if not with_worker:
            summary.seconds = round(time.monotonic() - started, 3)
            return summary
        try:
            asyncio.run(wait_until_processed(settings, timeout_s, worker))
        except StreamsError:
            if worker is not None:
                sys.stderr.write((workdir / "worker.log").read_text(errors="replace")[-4000:])
            raise

    async def after() -> tuple[Counter[str], set[str]]:
        return await read_dead_letters(settings, dlq_start), await alert_ids(settings)

    reasons, stored = asyncio.run(after())
    summary.dead_letter_reasons = dict(sorted(reasons.items()))
    summary.dead_lettered = sum(reasons.values())
    summary.alerts = len(stored)
    summary.new_alerts = len(stored - known_alerts)
    if alerts_out is not None:
        asyncio.run(export_alerts(settings, alerts_out))
    summary.seconds = round(time.monotonic() - started, 3)
    return summary
