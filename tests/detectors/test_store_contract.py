"""One contract, two stores: the Redis/Lua store must equal the memory store, batch by batch."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import replace

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.clusters import ClusterEntry
from detectors.entities import EntityRef
from detectors.rules import Rule, RuleSet
from detectors.store import ClockInput, PartitionReport
from detectors.store_memory import MemoryWindowStore
from detectors.store_redis import RedisWindowStore, entity_keys, event_id_of, parked_records, stored_event_id
from detectors.windows import (
    PARCEL_WIDE,
    PARKED_KEY_CHARS,
    EntityUpdates,
    ParcelUpdate,
    Parked,
    Record,
    WindowConfig,
    milligrams,
    parcel_wide,
    parked_tag,
)
from streams.servers import RunningServer
from tests.detectors.strategies import parcel_updates

pytestmark = pytest.mark.integration

RULES = RuleSet(
    "t",
    (
        Rule("phone_day", "phone, one day", "sender_phone", 86400, 4.0, 2, "high", 2.0),
        Rule("phone_long", "phone, long", "sender_phone", 30 * 3600, 9.0, 1, "critical", 0),
        Rule("rcpt", "recipient", "recipient", 12 * 3600, 3.0, 1, "medium", 1.5),
    ),
)
CONFIG = WindowConfig(allowed_lateness_s=8 * 3600, retention_s=60 * 3600, max_parcels_per_entity=7, max_evidence=3)
# Keys as long as real pseudonyms: parked records name an entity by the start of its key only.
ENTITIES = [
    EntityRef("sender_phone", "0a" * 12),
    EntityRef("sender_phone", "1b" * 12),
    EntityRef("recipient", "2c" * 12),
]
_prefixes = (f"t{n}" for n in itertools.count())


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _record(value: bytes, parcel_key: str) -> Record:
    a, m, w, r, vt, c, rs, vid = value.decode().split("|", 7)
    return Record(
        int(float(a)),
        float(m),
        float(w),
        int(float(r)),
        int(float(vt or a)),
        event_id_of(vid, parcel_key),
        c == "1",
        tuple(filter(None, rs.split(","))),
    )


def _records(raw: dict[bytes, bytes]) -> dict[str, Record]:
    """The parcel records of an entity's records hash (its meta fields hold no ':')."""
    return {key.decode(): _record(value, key.decode()) for key, value in raw.items() if b":" in key}


def _holder(value: bytes) -> EntityRef:
    et, key = value[1:].decode().split(":", 1)
    return EntityRef(et, key)


async def _parked(client: aioredis.Redis, prefix: str) -> Parked:
    """The parked records in Redis, as the memory store keeps them ('*<type>:<key>': that entity holds it)."""
    out: Parked = {}
    async for key in client.scan_iter(match=f"{prefix}:p:*", count=1000):
        fields = parked_records(await client.get(key))
        parcel_key = key.decode()[len(prefix) + 3 :]
        out[parcel_key] = {
            tag: _holder(value) if value.startswith(b"*") else _record(value, parcel_key)
            for tag, value in fields.items()
        }
    return out


def _both_stores(
    redis_srv: RunningServer,
) -> tuple[aioredis.Redis, str, RedisWindowStore, MemoryWindowStore]:
    """A client, a fresh key prefix, and a Redis store under it beside an empty memory store."""
    client = aioredis.from_url(redis_srv.url)
    prefix = next(_prefixes)
    return client, prefix, RedisWindowStore(client, CONFIG, prefix=prefix), MemoryWindowStore(CONFIG)


def reports_after(
    maxima: dict[int, int], updates: list[ParcelUpdate], partition: int, idle: bool
) -> tuple[PartitionReport, ...]:
    """The reports of three partitions after a batch of ``updates`` read from ``partition``, as a
    worker makes them (``maxima`` raised in place); ``idle``: the others are idle, and a batch with
    no updates flushes every partition."""
    if updates:
        maxima[partition] = max([maxima.get(partition, updates[0].event_time_ms)] + [u.event_time_ms for u in updates])
    flush = idle and not updates
    return tuple(PartitionReport(p, maxima.get(p), flush or (idle and p != partition)) for p in range(3))


def links_of(updates: list[ParcelUpdate], node_sets: list[set[str]]) -> list[ClusterEntry]:
    """The cluster links of a batch: each update with suspect mass or a cancellation links its nodes."""
    return [
        ClusterEntry(u, tuple(sorted(nodes)))
        for u, nodes in zip(updates, node_sets, strict=False)
        if u.mass_kg > 0 or u.cancelled
    ]


async def _same_step(
    redis_store: RedisWindowStore,
    memory: MemoryWindowStore,
    batch: list[EntityUpdates],
    rules: RuleSet,
    reports: tuple[PartitionReport, ...],
    due: tuple[tuple[EntityRef, ...], tuple[EntityRef, ...]],
    links: list[ClusterEntry],
    now_ms: int = 0,
    parcels: tuple[ParcelUpdate, ...] = (),
) -> tuple[tuple[EntityRef, ...], tuple[EntityRef, ...]]:
    """One call to each store with the same input; both answer the same; the first alert is acknowledged.

    The others stay pending, and come back once ``now_ms`` has moved a reclaim period on."""
    lateness = CONFIG.allowed_lateness_s
    got = await redis_store.apply(
        batch, rules, ClockInput(reports, 3, lateness, due[0], now_ms), links, parcels=parcels
    )
    want = await memory.apply(batch, rules, ClockInput(reports, 3, lateness, due[1], now_ms), links, parcels=parcels)
    assert (got.at, got.due, got.stats.counts, got.alerts) == (want.at, want.due, want.stats.counts, want.alerts)
    await _kept_windows_hold_their_records(redis_store._client, redis_store._prefix)
    await redis_store.acknowledge(got.alerts[:1])
    await memory.acknowledge(want.alerts[:1])
    return got.due, want.due


def _kept_windows(raw: bytes) -> tuple[int, dict[str, tuple[int, int, int]]]:
    """'sw': the last end judged, and by rule the window's width, mass in milligrams and count."""
    end, *rules = raw.decode().split(";")
    return int(end), {rule: (int(w), int(mg), int(n)) for rule, w, mg, n in (summary.split("|") for summary in rules)}


def _milligrams(records: Iterable[Record], start: int, end: int) -> tuple[int, int]:
    """The mass in whole milligrams and the count of the live records anchored in (start, end]."""
    live = [r for r in records if not r.cancelled and r.mass_kg > 0 and start < r.anchor_ms <= end]
    return sum(milligrams(r.mass_kg) for r in live), len(live)


async def _kept_windows_hold_their_records(client: aioredis.Redis, prefix: str) -> None:
    """Every entity's kept windows are exactly its live records in (end - width, end]: the next
    call slides from them, so a stale one would miscount every later window."""
    async for key in client.scan_iter(match=f"{prefix}:{{*}}:r", count=1000):
        raw = await client.hgetall(key)
        if b"sw" in raw:
            end, kept = _kept_windows(raw[b"sw"])
            for rule, (width, milligrams, count) in kept.items():
                assert (milligrams, count) == _milligrams(_records(raw).values(), end - width, end), (key, rule)


async def _every_entity_key_expires(client: aioredis.Redis, prefix: str) -> None:
    """Every records hash and anchors set of the run has an idle expiry; every parked parcel expires too."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}:{{*", count=1000)]
    keys += [key async for key in client.scan_iter(match=f"{prefix}:p:*", count=1000)]
    ttls = [await client.pttl(key) for key in keys]
    assert [k for k, ttl in zip(keys, ttls, strict=True) if ttl <= 0] == []


def split_parcel_wide(
    updates: list[ParcelUpdate], wide: list[bool]
) -> tuple[tuple[ParcelUpdate, ...], tuple[ParcelUpdate, ...]]:
    """``updates`` as the entity's and as parcel-wide ones: each update that can go parcel-wide
    (no mass, no cancellation) does where ``wide`` says so, as the pipeline sends them."""
    flags = itertools.chain(wide, itertools.repeat(False))
    mine: list[ParcelUpdate] = []
    parcels: list[ParcelUpdate] = []
    for u, flag in zip(updates, flags, strict=False):
        (parcels if flag and parcel_wide(u) else mine).append(u)
    return tuple(mine), tuple(parcels)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(ENTITIES),
            parcel_updates(max_size=12),
            st.integers(0, 2),
            st.booleans(),
            st.lists(st.booleans(), max_size=12),
        ),
        min_size=1,
        max_size=8,
    )
)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_redis_store_equals_memory_store(
    redis_srv: RunningServer,
    loop: asyncio.AbstractEventLoop,
    batches: list[tuple[EntityRef, list[ParcelUpdate], int, bool, list[bool]]],
) -> None:
    """Batches come from one of three partitions; each reports its progress first, as a worker does.
    Some updates without mass go parcel-wide, and reach every entity that holds or takes their parcel."""

    async def run() -> None:
        client = aioredis.from_url(redis_srv.url)
        prefix = next(_prefixes)
        redis_store = RedisWindowStore(client, CONFIG, prefix=prefix)
        memory = MemoryWindowStore(CONFIG)
        maxima: dict[int, int] = {}
        due_redis: tuple[EntityRef, ...] = ()
        due_memory: tuple[EntityRef, ...] = ()
        batches.append((ENTITIES[0], [], 0, True, []))  # a final flush with every partition idle
        for step, (entity, updates, partition, idle, wide) in enumerate(batches):
            reports = reports_after(maxima, updates, partition, idle)
            mine, parcels = split_parcel_wide(updates, wide)
            batch = [EntityUpdates(entity, mine)] if mine else []
            due_redis, due_memory = await _same_step(
                redis_store, memory, batch, RULES, reports, (due_redis, due_memory), [], step * 25_000, parcels
            )
        for entity in ENTITIES:
            state = memory.states.get(entity)
            rkey = entity_keys(prefix, entity)[0]
            assert _records(await client.hgetall(rkey)) == (state.records if state else {})
        assert await _parked(client, prefix) == {key: slot for key, slot in memory.parked.items() if slot}
        await _every_entity_key_expires(client, prefix)
        await client.aclose()

    loop.run_until_complete(run())


def test_one_round_trip_per_batch_and_pending_alerts_are_handed_out_once_until_reclaimed(
    redis_srv: RunningServer, loop: asyncio.AbstractEventLoop
) -> None:
    async def run() -> None:
        client = aioredis.from_url(redis_srv.url)
        store = RedisWindowStore(client, CONFIG, prefix=next(_prefixes))
        ups = tuple(ParcelUpdate(f"p{i}", 1_767_225_600_000 + i, 3.0, 4.0, 1, "e") for i in range(3))
        batch = [EntityUpdates(e, ups) for e in ENTITIES]
        now = ClockInput((PartitionReport(0, None, idle=True),), 1, 0)
        await store.apply([], RULES, now)  # the clock now says: every partition idle, judge at once
        alerts = (await store.apply(batch, RULES, now)).alerts
        assert store.round_trips == 2  # one per call, whatever the batch holds
        assert {a.rule_id for a in alerts} == {"phone_day", "phone_long", "rcpt"}
        # Handed out once: another worker touching the same entities meanwhile does not publish them too.
        assert (await store.apply(batch, RULES, now)).alerts == []
        # Still unacknowledged a reclaim period later (their worker died): handed out again, once.
        later = replace(now, now_ms=now.now_ms + CONFIG.reclaim_after_s * 1000)
        assert (await store.apply([], RULES, later)).alerts == alerts
        assert (await store.apply([], RULES, later)).alerts == []
        await store.acknowledge(alerts)
        much_later = replace(now, now_ms=later.now_ms + 10 * CONFIG.reclaim_after_s * 1000)
        after = (await store.apply(batch, RULES, much_later)).alerts
        assert after == []
        assert await client.zcard(f"{store._prefix}:claims") == 0
        await client.aclose()

    loop.run_until_complete(run())


def test_a_new_entitys_record_moved_beyond_retention_in_its_first_call_is_pruned_in_both_stores(
    redis_srv: RunningServer, loop: asyncio.AbstractEventLoop
) -> None:
    """The script skips the prune for an entity it sees first, from the oldest anchor it wrote. A
    batch reaching further than the retention past the stream's progress can move a record of that
    entity below the cutoff in the same call: a second event of its parcel, earlier and not late."""

    async def run() -> None:
        client, prefix, redis_store, memory = _both_stores(redis_srv)
        t = 1_767_225_600_000
        idle = tuple(PartitionReport(p, t, True) for p in range(3))  # judged at once; late before t - lateness
        due = await _same_step(redis_store, memory, [], RULES, idle, ((), ()), [])
        later = t + 2 * CONFIG.retention_s * 1000
        # The second, a scale reading with no mass, moves the anchor and leaves the entity holding it.
        ups = (ParcelUpdate("p", later, 1.0, 4.0, 1, "e2"), ParcelUpdate("p", t, 0.0, 4.0, 2, "e1"))
        await _same_step(redis_store, memory, [EntityUpdates(ENTITIES[0], ups)], RULES, idle, due, [])
        assert memory.states[ENTITIES[0]].records == {}  # anchored at t, below later - retention: pruned
        assert _records(await client.hgetall(entity_keys(prefix, ENTITIES[0])[0])) == {}
        await client.aclose()

    loop.run_until_complete(run())


def test_a_busy_entitys_windows_slide_on_through_pruning_and_are_read_afresh_when_the_cap_cuts_into_them(
    redis_srv: RunningServer, loop: asyncio.AbstractEventLoop
) -> None:
    """A parcel every 10 hours: pruning removes only what left every window long ago, so each call
    slides the windows kept at the last end judged. A record changed behind the script's back
    inside them shows it: the slid windows still hold the memory store's masses, not the changed
    one. A burst past the cap of 7 evicts records inside the windows: they are read afresh."""

    async def run() -> None:
        client, prefix, redis_store, memory = _both_stores(redis_srv)
        rkey = entity_keys(prefix, ENTITIES[0])[0]
        t, hour = 1_767_225_600_000, 3_600_000
        due: tuple[tuple[EntityRef, ...], tuple[EntityRef, ...]] = ((), ())

        def batch(*hours: float) -> list[EntityUpdates]:
            ups = (ParcelUpdate(f"p:{h:07.2f}", t + int(h * hour), 0.5, 1.0, 1, f"e{h}") for h in hours)
            return [EntityUpdates(ENTITIES[0], tuple(ups))]

        def idle_at(h: float) -> tuple[PartitionReport, ...]:  # ends up to h less the lateness are judged
            return tuple(PartitionReport(p, t + int(h * hour), p > 0) for p in range(3))

        for h in range(0, 100, 10):
            due = await _same_step(redis_store, memory, batch(h), RULES, idle_at(h), due, [])
        assert await client.zcard(entity_keys(prefix, ENTITIES[0])[1]) == 7  # 30 h to 90 h: pruned below 90 h - 60 h
        # Behind the script's back: the record at 80 h, inside the 24 h and 30 h windows ending at 90 h.
        member = "p:0080.00"
        field = next(k for k in await client.hkeys(rkey) if k.decode().endswith(member))
        a, _, rest = (await client.hget(rkey, field)).decode().partition("|")
        await client.hset(rkey, field, f"{a}|{rest.partition('|')[0]}7|{rest.partition('|')[2]}")
        for store in (redis_store, memory):
            await store.apply(batch(100), RULES, ClockInput(idle_at(100), 3, CONFIG.allowed_lateness_s))
        end, kept = _kept_windows(await client.hget(rkey, "sw"))
        assert end == t + (100 - 8) * hour - 1  # judged up to the lateness before the stream's time
        records = memory.states[ENTITIES[0]].records.values()
        for rule in RULES.rules:
            if rule.entity_type == "sender_phone":
                width = rule.window_s * 1000
                assert kept[rule.id] == (width, *_milligrams(records, end - width, end)), rule.id

        # Six parcels within the hour: the cap evicts records inside the windows kept at 100 h.
        burst = [100.5 + k / 10 for k in range(6)]
        await redis_store.apply(batch(*burst), RULES, ClockInput(idle_at(burst[-1]), 3, CONFIG.allowed_lateness_s))
        assert await client.zcard(entity_keys(prefix, ENTITIES[0])[1]) == CONFIG.max_parcels_per_entity
        await _kept_windows_hold_their_records(client, prefix)
        await client.aclose()

    loop.run_until_complete(run())


def test_a_suppression_silences_one_rule_for_one_entity_until_it_expires_in_both_stores(
    redis_srv: RunningServer, loop: asyncio.AbstractEventLoop
) -> None:
    async def run() -> None:
        client = aioredis.from_url(redis_srv.url)
        redis_store = RedisWindowStore(client, CONFIG, prefix=next(_prefixes))
        t0 = 1_767_225_600_000
        ups = tuple(ParcelUpdate(f"p{i}", t0 + i, 3.0, 4.0, 1, f"e{i}") for i in range(3))
        later = tuple(ParcelUpdate(f"q{i}", t0 + 40 * 3_600_000 + i, 30.0, 4.0, 1, f"f{i}") for i in range(3))
        now_ms = 1_800_000_000_000
        for store in (redis_store, MemoryWindowStore(CONFIG)):
            await store.suppress(ENTITIES[0], "phone_day", until_ms=now_ms + 1000, now_ms=now_ms)
            clock = ClockInput((PartitionReport(0, None, idle=True),), 1, 0, now_ms=now_ms)
            await store.apply([], RULES, clock)
            result = await store.apply([EntityUpdates(e, ups) for e in ENTITIES], RULES, clock)
            raised = {(a.entity, a.rule_id) for a in result.alerts}
            assert (ENTITIES[0], "phone_day") not in raised and (ENTITIES[1], "phone_day") in raised
            assert (ENTITIES[0], "phone_long") in raised  # the other rule still speaks
            assert result.stats.counts["suppressed"] == 2  # the two window ends that cross (6 kg, 9 kg)
            await store.acknowledge(result.alerts)
            # Once the suppression has expired, the entity's next crossing raises the first episode.
            expired = ClockInput((PartitionReport(0, None, idle=True),), 1, 0, now_ms=now_ms + 1000)
            after = await store.apply([EntityUpdates(ENTITIES[0], later)], RULES, expired)
            assert [(a.rule_id, a.episode) for a in after.alerts if a.rule_id == "phone_day"] == [("phone_day", 1)]
        records = entity_keys(redis_store._prefix, ENTITIES[0])[0]
        assert await client.pttl(records) > 0  # the suppression's hash expires like every entity key
        await client.aclose()

    loop.run_until_complete(run())


def test_anchors_first_written_under_a_long_suppression_expire_with_their_records(
    redis_srv: RunningServer, loop: asyncio.AbstractEventLoop
) -> None:
    """A suppression can give a records hash an expiry beyond the idle one; anchors written for the
    first time after it take the hash's expiry, and neither is shortened to the idle expiry."""

    async def run() -> None:
        client = aioredis.from_url(redis_srv.url)
        store = RedisWindowStore(client, CONFIG, prefix=next(_prefixes))
        records, anchors = entity_keys(store._prefix, ENTITIES[0])
        ttl_ms = CONFIG.idle_ttl_s * 1000
        now_ms = 1_800_000_000_000
        await store.suppress(ENTITIES[0], "phone_day", until_ms=now_ms + 2 * ttl_ms, now_ms=now_ms)
        assert await client.exists(anchors) == 0
        clock = ClockInput((PartitionReport(0, None, idle=True),), 1, 0, now_ms=now_ms)
        update = ParcelUpdate("c:p1", 1_767_225_600_000, 1.0, 1.0, 1, "e1")
        await store.apply([EntityUpdates(ENTITIES[0], (update,))], RULES, clock)
        # never shortened to the idle expiry: both keep the suppression's
        assert await client.pttl(records) > ttl_ms and await client.pttl(anchors) > ttl_ms
        # a fresh entity: both get the idle expiry
        await store.apply([EntityUpdates(ENTITIES[1], (update,))], RULES, clock)
        for key in entity_keys(store._prefix, ENTITIES[1]):
            assert ttl_ms - 60_000 < await client.pttl(key) <= ttl_ms
        await client.aclose()

    loop.run_until_complete(run())


def test_a_parcel_that_never_counted_is_parked_once_and_moves_into_its_entities_when_it_does(
    redis_srv: RunningServer, loop: asyncio.AbstractEventLoop
) -> None:
    """No entity key for a parcel with no mass: one parked string, expiring a retention after its
    last write. A later scale reading with mass moves it into its entities, anchored at its first
    event, and the parked string then marks them and expires with them."""

    async def run() -> None:
        client, prefix, store, memory = _both_stores(redis_srv)
        t = 1_767_225_600_000
        clock = (PartitionReport(0, None, idle=False),)
        declared = ParcelUpdate("SF:1", t, 0.0, 1.0, 1, "declared")
        batch = [EntityUpdates(e, (declared,)) for e in ENTITIES[1:]]
        await _same_step(store, memory, batch, RULES, clock, ((), ()), [])
        assert [k async for k in client.scan_iter(match=f"{prefix}:{{*")] == []
        parked_key = f"{prefix}:p:SF:1"
        assert set(parked_records(await client.get(parked_key))) == {parked_tag(e) for e in ENTITIES[1:]}
        retention_ms = CONFIG.retention_s * 1000
        assert retention_ms - 60_000 < await client.pttl(parked_key) <= retention_ms
        scale = ParcelUpdate("SF:1", t + 3_600_000, 2.0, 1.5, 2, "picked_up")
        await _same_step(store, memory, [EntityUpdates(ENTITIES[1], (scale,))], RULES, clock, ((), ()), [])
        [record] = _records(await client.hgetall(entity_keys(prefix, ENTITIES[1])[0])).values()
        assert (record.anchor_ms, record.mass_kg, record.version_id) == (t, 2.0, "picked_up")
        assert await _parked(client, prefix) == memory.parked
        assert memory.parked["SF:1"][parked_tag(ENTITIES[1])] == ENTITIES[1]
        assert await client.pttl(parked_key) > retention_ms  # the entities' idle expiry now
        await client.aclose()

    loop.run_until_complete(run())


def test_a_shorter_parked_life_expires_parcels_that_never_counted_sooner_but_not_those_an_entity_holds(
    redis_srv: RunningServer, loop: asyncio.AbstractEventLoop
) -> None:
    """PARCELWATCH_PARKED_TTL: a parked string lives that long after its last write; once it marks
    an entity that holds the record, as long as the entity's keys (the mark routes later updates)."""

    async def run() -> None:
        client = aioredis.from_url(redis_srv.url)
        prefix = next(_prefixes)
        config = replace(CONFIG, parked_ttl_s=CONFIG.allowed_lateness_s + 600)
        store = RedisWindowStore(client, config, prefix=prefix)
        t = 1_767_225_600_000
        clock = ClockInput((PartitionReport(0, None, idle=False),), 3, config.allowed_lateness_s, (), 0)
        declared = ParcelUpdate("SF:9", t, 0.0, 1.0, 1, "declared")
        await store.apply([EntityUpdates(e, (declared,)) for e in ENTITIES[1:]], RULES, clock)
        life_ms = config.parked_life_s * 1000
        assert life_ms < CONFIG.retention_s * 1000
        assert life_ms - 60_000 < await client.pttl(f"{prefix}:p:SF:9") <= life_ms
        scale = ParcelUpdate("SF:9", t + 3_600_000, 2.0, 1.5, 2, "picked_up")
        await store.apply([EntityUpdates(ENTITIES[1], (scale,))], RULES, clock)
        assert await client.pttl(f"{prefix}:p:SF:9") > config.idle_ttl_s * 1000 - 60_000
        await client.aclose()

    loop.run_until_complete(run())


def test_parked_tags_hold_the_start_of_each_key_and_whole_keys_written_before_are_read_as_cut(
    redis_srv: RunningServer, loop: asyncio.AbstractEventLoop
) -> None:
    """A parked string names its entities by the first PARKED_KEY_CHARS of their keys. Two entities
    of one type whose keys start alike share the parcel's parked record, in both stores alike; a
    string written with whole keys (before tags were cut) is read as if cut, and written cut."""

    async def run() -> None:
        client, prefix, store, memory = _both_stores(redis_srv)
        t = 1_767_225_600_000
        clock = (PartitionReport(0, None, idle=False),)
        first, alike = (
            EntityRef("sender_phone", "0123456789" + "a" * 14),
            EntityRef("sender_phone", "0123456789" + "b" * 14),
        )
        assert parked_tag(first) == parked_tag(alike) == "sender_phone:0123456789"
        declared = ParcelUpdate("SF:7", t, 0.0, 1.0, 1, "declared")
        await _same_step(store, memory, [EntityUpdates(first, (declared,))], RULES, clock, ((), ()), [])
        raw = await client.get(f"{prefix}:p:SF:7")
        assert raw.endswith(b"a0123456789\n") and len(parked_records(raw)) == 1
        # the other entity's first event with mass finds the record parked under the shared start
        scale = ParcelUpdate("SF:7", t + 3_600_000, 2.0, 1.5, 2, "picked_up")
        await _same_step(store, memory, [EntityUpdates(alike, (scale,))], RULES, clock, ((), ()), [])
        [record] = _records(await client.hgetall(entity_keys(prefix, alike)[0])).values()
        assert record.anchor_ms == t == memory.states[alike].records["SF:7"].anchor_ms
        assert await _parked(client, prefix) == memory.parked

        # a string as the script wrote it with whole keys: one record for two entities
        whole = EntityRef("recipient", "2c" * 12)
        value = f"{t}|0.0|1.0|1||0||declared".encode()
        await client.set(
            f"{prefix}:p:SF:8",
            b"%d:%s%s %s\n" % (len(value), value, b"a" + first.key.encode(), b"d" + whole.key.encode()),
        )
        assert set(parked_records(await client.get(f"{prefix}:p:SF:8"))) == {parked_tag(first), parked_tag(whole)}
        later = ParcelUpdate("SF:8", t + 3_600_000, 2.0, 1.5, 2, "picked_up")
        await store.apply(
            [EntityUpdates(whole, (later,))], RULES, ClockInput(clock, 3, CONFIG.allowed_lateness_s, (), 0)
        )
        [record] = _records(await client.hgetall(entity_keys(prefix, whole)[0])).values()
        assert (record.anchor_ms, record.mass_kg) == (t, 2.0)  # anchored at the parked declaration
        rewritten = await client.get(f"{prefix}:p:SF:8")
        assert first.key.encode() not in rewritten and b"a" + first.key[:PARKED_KEY_CHARS].encode() in rewritten
        assert parked_records(rewritten)[parked_tag(whole)] == f"*recipient:{whole.key}".encode()
        await client.aclose()

    loop.run_until_complete(run())


def test_parcel_wide_updates_are_parked_once_for_their_parcel_and_reach_the_entities_that_hold_it(
    redis_srv: RunningServer, loop: asyncio.AbstractEventLoop
) -> None:
    """An update without mass sent parcel-wide writes one record, under '~', in its parcel's parked
    string, and no entity key. An entity that takes the parcel is marked with its whole member,
    and a later parcel-wide update reaches it there; a mark written before marks were named ('*')
    is read and kept, and reaches nobody."""

    async def run() -> None:
        client, prefix, store, memory = _both_stores(redis_srv)
        t = 1_767_225_600_000
        clock = (PartitionReport(0, None, idle=False),)
        created = ParcelUpdate("SF:3", t, 0.0, 1.0, 1, "created")
        await _same_step(store, memory, [], RULES, clock, ((), ()), [], parcels=(created,))
        assert [k async for k in client.scan_iter(match=f"{prefix}:{{*")] == []
        assert set(parked_records(await client.get(f"{prefix}:p:SF:3"))) == {PARCEL_WIDE}
        declared = ParcelUpdate("SF:3", t + 3_600_000, 2.0, 1.5, 1, "declared")
        await _same_step(store, memory, [EntityUpdates(ENTITIES[0], (declared,))], RULES, clock, ((), ()), [])
        [record] = _records(await client.hgetall(entity_keys(prefix, ENTITIES[0])[0])).values()
        assert (record.anchor_ms, record.mass_kg) == (t, 2.0)  # anchored at the parcel-wide event
        marks = parked_records(await client.get(f"{prefix}:p:SF:3"))
        assert marks[parked_tag(ENTITIES[0])] == f"*sender_phone:{ENTITIES[0].key}".encode()
        weighed = ParcelUpdate("SF:3", t + 7_200_000, 0.0, 1.5, 2, "weighed")
        await _same_step(store, memory, [], RULES, clock, ((), ()), [], parcels=(weighed,))
        [record] = _records(await client.hgetall(entity_keys(prefix, ENTITIES[0])[0])).values()
        assert (record.mass_kg, record.version_id) == (0.0, "weighed")
        assert await _parked(client, prefix) == memory.parked

        old_mark = f"{t}|0|1.0|1||0||created".encode()
        await client.set(f"{prefix}:p:SF:4", b"1:*d%s\n%d:%s~\n" % (ENTITIES[2].key.encode(), len(old_mark), old_mark))
        await store.apply(
            [],
            RULES,
            ClockInput(clock, 3, CONFIG.allowed_lateness_s),
            parcels=(ParcelUpdate("SF:4", t + 7_200_000, 0.0, 1.5, 2, "weighed"),),
        )
        marks = parked_records(await client.get(f"{prefix}:p:SF:4"))
        assert marks[parked_tag(ENTITIES[2])] == b"*" and marks[PARCEL_WIDE].endswith(b"weighed")
        await client.aclose()

    loop.run_until_complete(run())


@given(st.text(min_size=1), st.text(), st.text(min_size=1))
def test_an_event_id_reads_back_as_it_was_whatever_it_holds(event_id: str, courier: str, waybill: str) -> None:
    parcel_key = f"{courier}:{waybill}"
    for eid in (event_id, f"{waybill}{event_id}", f"{event_id}{waybill}\x01", f"\x02{waybill}"):
        assert event_id_of(stored_event_id(eid, parcel_key), parcel_key) == eid


def test_a_record_writes_its_waybill_once_and_reads_records_written_with_whole_ids(
    redis_srv: RunningServer, loop: asyncio.AbstractEventLoop
) -> None:
    """A record's event id names its waybill, which the record's key names already: the parked string
    holds it once, in its key. A record written with the whole id (before) reads as it was, and is
    written the short way when it changes."""

    async def run() -> None:
        client, prefix, store, memory = _both_stores(redis_srv)
        t = 1_767_225_600_000
        clock = (PartitionReport(0, None, idle=False),)
        waybill = "JD7885434734014426"
        declared = ParcelUpdate(f"JD:{waybill}", t, 0.0, 1.0, 1, f"{waybill}:declared")
        await _same_step(store, memory, [EntityUpdates(e, (declared,)) for e in ENTITIES], RULES, clock, ((), ()), [])
        raw = await client.get(f"{prefix}:p:JD:{waybill}")
        assert waybill.encode() not in raw and b"\x01:declared" in raw
        assert (await _parked(client, prefix))[f"JD:{waybill}"][parked_tag(ENTITIES[0])].version_id == declared.event_id

        # written before: the whole id, a scale reading (rank 2); an earlier declaration then moves its anchor
        value = f"{t}|0|1.5|2||0||SF:SF1:scanned".encode()
        await client.set(f"{prefix}:p:SF:SF1", b"%d:%sa%s\n" % (len(value), value, ENTITIES[0].key[:10].encode()))
        memory.parked["SF:SF1"] = {parked_tag(ENTITIES[0]): _record(value, "SF:SF1")}
        earlier = ParcelUpdate("SF:SF1", t - 3_600_000, 0.0, 1.0, 1, "SF1:declared")
        await _same_step(store, memory, [EntityUpdates(ENTITIES[0], (earlier,))], RULES, clock, ((), ()), [])
        [stored] = parked_records(await client.get(f"{prefix}:p:SF:SF1")).values()
        assert stored == f"{t - 3_600_000}|0|1.5|2|{t}|0||SF:\x01:scanned".encode()
        assert (await _parked(client, prefix))["SF:SF1"] == memory.parked["SF:SF1"]
        await client.aclose()

    loop.run_until_complete(run())


CLUSTER_RULES = RuleSet(
    "c",
    (
        Rule("cl_day", "cluster, one day", "cluster", 86400, 4.0, 2, "high", 1.5),
        Rule("cl_long", "cluster, long", "cluster", 30 * 3600, 9.0, 1, "critical", 0),
        Rule("phone_day", "phone, one day", "sender_phone", 86400, 4.0, 2, "high", 2.0),
    ),
)
NODES = [f"sender_phone:p{i}" for i in range(4)] + [f"sender_room:r{i}" for i in range(3)] + ["sender_account:a0"]


@given(
    st.lists(
        st.tuples(
            parcel_updates(max_size=10),
            st.lists(st.sets(st.sampled_from(NODES), min_size=1, max_size=3), min_size=10, max_size=10),
            st.integers(0, 2),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(1, 4),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_clusters_in_redis_equal_clusters_in_memory(
    redis_srv: RunningServer,
    loop: asyncio.AbstractEventLoop,
    batches: list[tuple[list[ParcelUpdate], list[set[str]], int, bool]],
    cluster_limit: int,
) -> None:
    """Links join clusters as events become final, a few per call; both stores agree call by call."""

    async def run() -> None:
        client = aioredis.from_url(redis_srv.url)
        prefix = next(_prefixes)
        redis_store = RedisWindowStore(client, CONFIG, prefix=prefix)
        memory = MemoryWindowStore(CONFIG, cluster_limit=cluster_limit)
        redis_store.cluster_limit = cluster_limit
        maxima: dict[int, int] = {}
        due_redis: tuple[EntityRef, ...] = ()
        due_memory: tuple[EntityRef, ...] = ()
        flushes: list[tuple[list[ParcelUpdate], list[set[str]], int, bool]] = [([], [], 0, True)] * 6
        for step, (updates, node_sets, partition, idle) in enumerate(batches + flushes):
            reports = reports_after(maxima, updates, partition, idle)
            links = links_of(updates, node_sets)
            phone = EntityRef("sender_phone", "p0")
            batch = [EntityUpdates(phone, tuple(updates))] if updates else []
            due_redis, due_memory = await _same_step(
                redis_store, memory, batch, CLUSTER_RULES, reports, (due_redis, due_memory), links, step * 25_000
            )
        parents = {k.decode(): v.decode() for k, v in (await client.hgetall(f"{prefix}:cl:parent")).items()}
        assert parents == memory.parent
        for entity, state in memory.states.items():
            if entity.entity_type == "cluster":
                assert _records(await client.hgetall(entity_keys(prefix, entity)[0])) == state.records
        await _every_entity_key_expires(client, prefix)  # merged clusters' survivors included
        await client.aclose()

    loop.run_until_complete(run())
