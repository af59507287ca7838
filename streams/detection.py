"""The detector stage of the worker: batches in, windows and alerts out, driven by the stream clock.

The clock is this worker's view of its partitions: greatest event time read from each, and
whether each is idle (processed to its end and quiet for ``idle_after_s``). Every batch is one
store call: it carries the batch, this view and the entities the previous call left due;
the store refuses late events (they are dead-lettered here) and judges with the group-wide
progress as it stood before the call, then merges this view and judges what it made final.
A batch goes through two stages: staged (validated, scored, linked, its view taken) while the
previous batch's store call runs, then applied. A timer makes a store call with no events, so
that a quiet or finished stream still gets its last windows judged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiokafka.errors import IllegalStateError

from detectors.alert_store import RedisAlertStore
from detectors.entities import EntityRef
from detectors.errors import InvalidEvent
from detectors.events import ParcelEvent
from detectors.parcel_store import RedisParcelStore
from detectors.pipeline import BatchOutcome, Detector, PreparedBatch, apply_batch, prepare_batch
from detectors.rules import RuleSet
from detectors.store import ClockInput, PartitionReport
from detectors.store_redis import RedisWindowStore
from detectors.store_sharded import ShardedWindowStore
from detectors.validation import parse
from detectors.windows import WindowConfig
from streams.health import Health
from streams.metrics import BATCH_STEPS, Metrics
from streams.retry import with_retry

log = logging.getLogger("parcelwatch.detect")
# Staging yields to the event loop this often (messages). A full intake buffer hands a batch over
# without suspending, and the previous batch's store call is sent only a few loop turns after it
# is scheduled: without these yields the call would go out once staging ends, and Redis and the
# worker would take turns instead of working side by side (benchmarks/throughput.py). Faust's
# fetch loop and timers are served meanwhile too.
YIELD_EVERY = 100


def polled_s_ago(consumer: Any, tp: Any) -> float | None:
    """Age of the high watermark Faust's consumer holds for ``tp``, or None where it cannot be told.

    Faust does not pass aiokafka's ``last_poll_timestamp`` on; it is read off the aiokafka consumer
    Faust runs in its consumer thread.
    """
    try:
        polled_ms = consumer._thread._ensure_consumer().last_poll_timestamp(tp)
    except (AssertionError, AttributeError, KeyError, TypeError, IllegalStateError):
        return None
    return None if polled_ms is None else max(time.time() - polled_ms / 1000, 0.0)


@dataclass
class StreamClock:
    idle_after_s: float
    # A long-polling fetch answers within 0.5 s (Faust's and aiokafka's default wait); twice that
    # leaves room for a busy event loop.
    fresh_within_s: float = 1.0
    monotonic: Callable[[], float] = time.monotonic
    maxima: dict[int, int] = field(default_factory=dict)
    next_offset: dict[int, int] = field(default_factory=dict)
    last_activity: dict[int, float] = field(default_factory=dict)

    def observe(self, partition: int, offset: int, event_time_ms: int | None) -> None:
        self.next_offset[partition] = max(self.next_offset.get(partition, 0), offset + 1)
        self.last_activity[partition] = self.monotonic()
        if event_time_ms is not None and event_time_ms > self.maxima.get(partition, event_time_ms - 1):
            self.maxima[partition] = event_time_ms

    def report(
        self, partition: int, highwater: int | None, committed: int | None, polled_s_ago: float | None = None
    ) -> PartitionReport:
        """``committed``: the group's committed offset, for a partition this process has handled nothing of.
        ``polled_s_ago``: how old the high watermark is (when the consumer last fetched the partition).

        Idle means everything up to the high watermark has been *processed* (not merely fetched:
        events waiting in the stream buffer must still hold time back), nothing came for a while,
        and the high watermark is fresh. A consumer busy with other partitions stops fetching this
        one, and its last high watermark then says nothing of what was published since.
        """
        now = self.monotonic()
        quiet = now - self.last_activity.setdefault(partition, now) >= self.idle_after_s
        done = self.processed_to(partition, committed)
        caught_up = highwater is not None and done is not None and done >= highwater
        fresh = polled_s_ago is not None and polled_s_ago <= self.fresh_within_s
        return PartitionReport(partition, self.maxima.get(partition), quiet and caught_up and fresh)

    def processed_to(self, partition: int, committed: int | None) -> int | None:
        """Next offset to process: what this process handled, else the group's committed offset."""
        return self.next_offset.get(partition, committed)


@dataclass(frozen=True, slots=True)
class StagedBatch:
    """A batch through its first stage: validated, scored, linked, with the clock as it stood then."""

    prepared: PreparedBatch
    reports: tuple[PartitionReport, ...]  # this worker's partitions as of the batch's last event
    partitions: int
    config: WindowConfig
    where: dict[int, Any]  # id(event) -> its Kafka message, for dead letters
    encoded: object  # the store's request for it, as far as it can be made before the call


@dataclass
class Detection:
    detector: Detector
    window_store: ShardedWindowStore | RedisWindowStore
    alert_store: RedisAlertStore
    parcel_store: RedisParcelStore
    clock: StreamClock
    lateness_s: int
    send_dead_letter: Callable[..., Awaitable[None]]
    send_alerts: Callable[[list[dict[str, Any]]], Awaitable[None]]
    # Ids of the alerts on the alerts topic published at or after a wall-clock time (ms).
    published_since: Callable[[int], Awaitable[set[str]]]
    committed_offset: Callable[[Any], Awaitable[int | None]]
    metrics: Metrics
    health: Health
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one store call at a time
    # Held while a batch is staged and while a tick reads the clock: a tick must never report the
    # progress of events staged but not yet applied (the store would then refuse them as late).
    staging: asyncio.Lock = field(default_factory=asyncio.Lock)
    unapplied: int = 0  # batches staged whose store call has not finished
    due: tuple[EntityRef, ...] = ()
    wall_clock: Callable[[], float] = time.time  # for analysts' suppressions only
    # Committed offsets of partitions this process has handled nothing of; they do not move while
    # we own the partition, so one look-up per assignment is enough.
    committed: dict[int, int | None] = field(default_factory=dict)
    republish_margin_s: int = 300
    # The window configuration of the rules in force; each batch takes it with it when staged.
    window_config: WindowConfig = field(init=False)

    def __post_init__(self) -> None:
        self.window_config = self.window_store.config

    async def _reports(self, consumer: Any, topic: str) -> tuple[PartitionReport, ...]:
        assigned = sorted(tp for tp in consumer.assignment() if tp.topic == topic)
        for gone in set(self.committed) - {tp.partition for tp in assigned}:
            del self.committed[gone]
        reports = []
        for tp in assigned:
            try:
                highwater = consumer.highwater(tp)
            except (KeyError, AttributeError):
                highwater = None
            if tp.partition not in self.clock.next_offset and self.committed.get(tp.partition) is None:
                self.committed[tp.partition] = await self.committed_offset(tp)
            committed = self.committed.get(tp.partition)
            reports.append(self.clock.report(tp.partition, highwater, committed, polled_s_ago(consumer, tp)))
            done = self.clock.processed_to(tp.partition, committed)
            if highwater is not None and done is not None:
                self.metrics.consumer_lag.labels(topic=topic, partition=str(tp.partition)).set(max(highwater - done, 0))
        return tuple(reports)

    def _clock_input(self, reports: tuple[PartitionReport, ...], partitions: int) -> ClockInput:
        return ClockInput(reports, partitions, self.lateness_s, self.due, int(self.wall_clock() * 1000))

    async def set_rules(self, rules: RuleSet, config: WindowConfig) -> None:
        """New rules (and the retention they need) from the next batch staged on; never in the middle of one."""
        async with self.staging:
            self.detector = replace(self.detector, rules=rules)
            self.window_config = config

    async def stage(self, messages: Sequence[Any], consumer: Any, topic: str, partitions: int) -> StagedBatch:
        """First stage: validate (dead-lettering what fails), score, link; no store call.

        ``messages``: Faust's messages of the canonical topic (raw bytes values), in the order read.

        The worker stages the next batch while the previous one's store call runs in Redis. The
        batch's partition reports are taken here, so that they say what the batch will have
        processed once it is applied, never more.
        """
        async with self.staging:
            started = time.perf_counter()
            valid: list[ParcelEvent] = []
            where: dict[int, Any] = {}
            self.metrics.events_consumed.labels(source="canonical").inc(len(messages))
            for n, msg in enumerate(messages, 1):
                if n % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                try:
                    value = msg.value
                    if not isinstance(value, bytes | bytearray):
                        raise InvalidEvent("not_json", f"message value has type {type(value).__name__}")
                    parsed = parse(bytes(value))
                except InvalidEvent as exc:
                    self.clock.observe(msg.partition, msg.offset, None)
                    self.metrics.events_processed.labels(source="canonical", outcome="dead_letter").inc()
                    await self._dead_letter(exc.reason, exc.detail, "validate", msg, msg.value)
                    continue
                self.clock.observe(msg.partition, msg.offset, parsed.event_time_ms)
                where[id(parsed)] = msg
                valid.append(parsed)
            self.unapplied += 1
            try:
                reports = await self._reports(consumer, topic)
                prepared = prepare_batch(valid, self.detector)
                encoded = self.window_store.prepare(prepared.groups, prepared.links, prepared.parcels)
            except BaseException:
                self.unapplied -= 1
                raise
            self.metrics.batch_step_seconds.labels(step="stage").observe(time.perf_counter() - started)
            return StagedBatch(prepared, reports, partitions, self.window_config, where, encoded)

    async def apply(self, staged: StagedBatch) -> None:
        """Second stage: the store call, alerts, dead letters of the events it refused as late."""
        async with self.lock:
            try:
                self.window_store.config = staged.config
                valid = staged.prepared.events
                outcome = await self._process(
                    staged.prepared, self._clock_input(staged.reports, staged.partitions), staged.encoded
                )
            finally:
                self.unapplied -= 1
            late = outcome.late
            processed = self.metrics.events_processed
            processed.labels(source="canonical", outcome="applied").inc(len(valid) - len(late))
            processed.labels(source="canonical", outcome="late").inc(len(late))
            for parsed in late:
                partly = parsed.event_id in outcome.partly_late  # a sharded store's other shards counted it
                await self._dead_letter(
                    "late",
                    f"event time {parsed.event_time_ms} ms is before the lateness bound of "
                    + ("some of its entities' store shards; the others counted it" if partly else "the stream"),
                    "window",
                    staged.where[id(parsed)],
                    orjson.dumps({"parcel_id": parsed.parcel_id, "event_id": parsed.event_id}),
                )

    async def tick(self, consumer: Any, topic: str, partitions: int, max_rounds: int = 20) -> None:
        """Report progress with no events: judge what became final while the stream was quiet.

        Up to ``max_rounds`` calls (each judging up to the store's due limit), then the locks go
        back to the agent. Nothing while a batch is staged: its own store call reports progress.
        """
        for _ in range(max_rounds):
            async with self.staging:
                if self.unapplied:
                    return
                async with self.lock:
                    reports = await self._reports(consumer, topic)
                    self.window_store.config = self.window_config
                    await self._process(prepare_batch([], self.detector), self._clock_input(reports, partitions))
                    if not self.due:
                        return

    async def _dead_letter(self, *args: Any) -> None:
        await self._retry("dead-letter publish", lambda: self.send_dead_letter(*args), server="broker")

    async def _retry(self, what: str, action: Callable[[], Awaitable[Any]], server: str = "redis") -> Any:
        def failed(operation: str) -> None:
            if server == "broker":
                self.metrics.broker_errors.labels(operation=operation).inc()
                return
            self.metrics.redis_errors.labels(operation=operation).inc()
            self.health.redis_ok = False

        def succeeded() -> None:
            self.health.redis_ok = True

        started = time.perf_counter()
        result = await with_retry(what, action, on_error=failed, on_success=succeeded)
        if what in BATCH_STEPS:
            self.metrics.batch_step_seconds.labels(step=what).observe(time.perf_counter() - started)
        return result

    async def _publish(self, alerts: list[dict[str, Any]], stored_before: dict[str, int], now_ms: int) -> None:
        """Publish ``alerts``, except those already on the alerts topic.

        An alert may be there already if it was stored before (a worker stored it, published it and
        died before acknowledging it: it was handed out again) or if an earlier attempt of this
        publish failed part-way. Only then is the topic read, from when the alert was first stored
        (less ``republish_margin_s``, for clocks apart): a dead worker's handed-out alerts come back
        ``reclaim_after_s`` later, long after anything it had in flight has landed.
        """
        doubtful = dict(stored_before)
        attempts = 0

        async def attempt() -> None:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                doubtful.update((a["alert_id"], min(doubtful.get(a["alert_id"], now_ms), now_ms)) for a in alerts)
            todo = alerts
            if doubtful:
                since = min(doubtful.values()) - self.republish_margin_s * 1000
                there = await self.published_since(max(since, 0)) & doubtful.keys()
                todo = [a for a in alerts if a["alert_id"] not in there]
                if there:
                    self.metrics.alerts_already_published.inc(len(there))
                    log.info("alerts already on the alerts topic, not published again", extra={"alerts": len(there)})
            if todo:
                await self.send_alerts(todo)

        await self._retry("alert publish", attempt, server="broker")

    async def _process(self, prepared: PreparedBatch, clock: ClockInput, encoded: object = None) -> BatchOutcome:
        """One store call (a call to each shard of a sharded store); its ``late``: the events it refused."""
        started = time.monotonic()
        events = prepared.events
        calls = self.window_store.round_trips
        outcome = await self._retry("window update", lambda: apply_batch(prepared, self.window_store, clock, encoded))
        self.due = outcome.due
        m = self.metrics
        m.redis_round_trips.inc(self.window_store.round_trips - calls)
        if events:  # an idle tick is a store call, not a batch
            m.batch_size.observe(len(events))
            m.parcels_scored.inc(len(events))
        for score in outcome.scores:
            for code in score.reasons if score.suspect_mass_kg > 0 else ():
                m.suspect_parcels.labels(reason=code).inc()
        m.window_stats(outcome.stats)
        now = time.time()
        for alert in outcome.alerts:
            m.alerts.labels(rule=alert["rule"], severity=alert["severity"]).inc()
        for raised in outcome.raised:
            m.event_to_alert.observe(max(now - raised.last_event_ms / 1000, 0.0))
        if outcome.parcel_details:  # before the alerts that may cite them
            await self._retry("parcel details", lambda: self.parcel_store.save(outcome.parcel_details))
        if outcome.alerts:
            now_ms = int(self.wall_clock() * 1000)
            stored_before = await self._retry("alert store", lambda: self.alert_store.save(outcome.alerts, now_ms))
            await self._publish(outcome.alerts, stored_before, now_ms)
            await self._retry("alert acknowledgement", lambda: self.window_store.acknowledge(outcome.raised))
            for alert in outcome.alerts:
                log.info(
                    "alert raised",
                    extra={
                        k: alert[k]
                        for k in (
                            "alert_id",
                            "rule",
                            "severity",
                            "episode",
                            "parcel_count",
                            "suspect_mass_kg",
                            "last_event_time",
                        )
                    },
                )
        if events:
            m.batch_seconds.observe(time.monotonic() - started)
        return outcome
