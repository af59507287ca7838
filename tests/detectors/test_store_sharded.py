"""The sharded window store: shards' prefixes and routing, and the memory store's contract kept
when a batch's entities and clusters are spread over several shards of a real redis-server."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from detectors.entities import EntityRef, Pseudonymizer
from detectors.errors import ConfigError
from detectors.offline import detect_in_order, parse_valid
from detectors.pipeline import BatchOutcome, Detector, PreparedBatch, apply_batch, prepare_batch
from detectors.reference import load_reference
from detectors.rules import Rule, RuleSet, load_rules
from detectors.store import ClockInput, PartitionReport
from detectors.store_memory import MemoryWindowStore
from detectors.store_redis import entity_keys, parked_records
from detectors.store_sharded import ShardedWindowStore, shard_of, shard_prefixes
from detectors.windows import PARCEL_WIDE, EntityUpdates, ParcelUpdate, WindowConfig
from streams.servers import RunningServer
from tests.detectors.strategies import parcel_updates
from tests.detectors.test_store_contract import (
    CONFIG,
    _every_entity_key_expires,
    _records,
    links_of,
    reports_after,
    split_parcel_wide,
)
from tests.replay_expectations import RULES as RULES_FILE
from tests.replay_expectations import SECRET, STREAM, essence, read_expected

RULES = RuleSet(
    "s",
    (
        Rule("phone_day", "phone, one day", "sender_phone", 86400, 4.0, 2, "high", 2.0),
        Rule("rcpt", "recipient", "recipient", 12 * 3600, 3.0, 1, "medium", 1.5),
        Rule("cl_day", "cluster, one day", "cluster", 86400, 4.0, 2, "high", 1.5),
    ),
)
SHARDS = 3
# Two phones and a recipient in each shard, so that every batch touches several shards.
ENTITIES = [
    next(e for n in itertools.count() if shard_of(e := EntityRef(kind, f"{kind[0]}{shard}x{n}"), SHARDS) == shard)
    for shard in range(SHARDS)
    for kind in ("sender_phone", "sender_phone", "recipient")
]
ENTITIES = list(dict.fromkeys(ENTITIES))
NODES = [f"sender_phone:p{i}" for i in range(3)] + ["sender_room:r0", "sender_account:a0"]
_prefixes = (f"sh{n}" for n in itertools.count())


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_one_shard_keeps_the_prefix_and_cluster_shards_take_evenly_spread_slots() -> None:
    assert shard_prefixes("pw", 1) == ("pw",)
    assert shard_prefixes("{pw}", 1) == ("{pw}",)
    assert shard_prefixes("pw", 3) == ("pw.0", "pw.1", "pw.2")
    for shards in (2, 3, 6, 64):
        prefixes = shard_prefixes("{pw}x", shards)
        assert len(set(prefixes)) == shards and all(p.startswith("{pw.") and p.endswith("}x") for p in prefixes)
        slots = [key_slot(f"{p}:anything".encode()) for p in prefixes]
        # shard i in the i-th equal range: three masters of equal ranges hold shards/3 shards each
        assert [slot * shards // 16384 for slot in slots] == list(range(shards))
    with pytest.raises(ConfigError, match="between 1 and 1024"):
        shard_prefixes("{pw}", 0)


def test_entities_spread_evenly_over_shards_and_clusters_stay_in_shard_zero() -> None:
    rng = random.Random(5)
    counts = Counter(shard_of(EntityRef("recipient", f"{rng.getrandbits(96):024x}"), 6) for _ in range(60_000))
    assert sorted(counts) == list(range(6))
    assert max(counts.values()) / min(counts.values()) < 1.1
    assert {shard_of(EntityRef("cluster", f"sender_phone:{n}"), 6) for n in range(100)} == {0}
    assert {shard_of(EntityRef("recipient", f"{n}"), 1) for n in range(100)} == {0}


@given(
    st.lists(
        st.tuples(
            parcel_updates(max_size=10),
            st.sets(st.sampled_from(range(len(ENTITIES))), min_size=1, max_size=len(ENTITIES)),
            st.lists(st.sets(st.sampled_from(NODES), min_size=1, max_size=3), min_size=10, max_size=10),
            st.integers(0, 2),
            st.booleans(),
            st.lists(st.booleans(), max_size=10),
        ),
        min_size=1,
        max_size=6,
    ),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_sharded_store_equals_the_memory_store_call_by_call(
    redis_srv: RunningServer,
    loop: asyncio.AbstractEventLoop,
    batches: list[tuple[list[ParcelUpdate], set[int], list[set[str]], int, bool, list[bool]]],
) -> None:
    """One worker's calls: every shard gets the same reports, so the shards' clocks agree, and the
    alerts, statistics, progress and due entities are the single store's. Some updates without
    mass go parcel-wide: every shard gets them, for the entities it holds."""

    async def run() -> None:
        client = aioredis.from_url(redis_srv.url)
        prefix = next(_prefixes)
        sharded, memory = ShardedWindowStore(client, CONFIG, prefix=prefix, shards=SHARDS), MemoryWindowStore(CONFIG)
        maxima: dict[int, int] = {}
        due: tuple[tuple[EntityRef, ...], tuple[EntityRef, ...]] = ((), ())
        flushes: list[tuple[list[ParcelUpdate], set[int], list[set[str]], int, bool, list[bool]]]
        flushes = [([], set(), [], 0, True, [])] * 4
        for step, (updates, chosen, node_sets, partition, idle, wide) in enumerate(batches + flushes):
            reports = reports_after(maxima, updates, partition, idle)
            mine, parcels = split_parcel_wide(updates, wide)
            batch = [EntityUpdates(ENTITIES[i], mine) for i in sorted(chosen)] if mine else []
            links = links_of(updates, node_sets)
            now_ms = step * 25_000
            calls = sharded.round_trips
            got = await sharded.apply(
                batch, RULES, ClockInput(reports, 3, CONFIG.allowed_lateness_s, due[0], now_ms), links, parcels=parcels
            )
            want = await memory.apply(
                batch, RULES, ClockInput(reports, 3, CONFIG.allowed_lateness_s, due[1], now_ms), links, parcels=parcels
            )
            assert (got.at, got.stats.counts, got.alerts) == (want.at, want.stats.counts, want.alerts)
            assert sorted(got.due) == sorted(want.due) and got.partly_late == frozenset()
            # every shard, every call (each carries the reports), and first the parcels' home shards
            homes = {sharded.home_of(key) for key in {u.parcel_key for u in updates}} if updates else set()
            assert sharded.round_trips - calls <= SHARDS + len(homes)
            assert sharded.round_trips - calls >= SHARDS + len({sharded.home_of(u.parcel_key) for u in parcels})
            await sharded.acknowledge(got.alerts[:1])
            await memory.acknowledge(want.alerts[:1])
            due = got.due, want.due
        for entity, state in memory.states.items():
            home = sharded.prefixes[shard_of(entity, SHARDS)]
            assert _records(await client.hgetall(entity_keys(home, entity)[0])) == state.records
            for other in set(sharded.prefixes) - {home}:
                assert not await client.exists(*entity_keys(other, entity))
        for shard_prefix in sharded.prefixes:
            await _every_entity_key_expires(client, shard_prefix)
        # a parcel's parcel-wide record is kept in its home shard alone
        for i, shard_prefix in enumerate(sharded.prefixes):
            async for key in client.scan_iter(match=f"{shard_prefix}:p:*"):
                if PARCEL_WIDE in parked_records(await client.get(key)):
                    assert sharded.home_of(key.decode()[len(shard_prefix) + 3 :]) == i
        await client.aclose()

    loop.run_until_complete(run())


def test_the_recorded_stream_through_four_shards_gives_the_expected_alerts(
    redis_srv: RunningServer, loop: asyncio.AbstractEventLoop
) -> None:
    events = parse_valid(STREAM.read_bytes().splitlines())
    detector = Detector(load_reference(), load_rules(RULES_FILE), Pseudonymizer(SECRET.encode()))
    config = WindowConfig.for_rules(detector.rules.longest_window_s)

    async def run() -> tuple[list[dict[str, Any]], list[int]]:
        client = aioredis.from_url(redis_srv.url)
        try:
            store = ShardedWindowStore(client, config, prefix=next(_prefixes), shards=4)
            alerts = await detect_in_order(events, detector, store, config.allowed_lateness_s)
            sizes = [len([k async for k in client.scan_iter(match=f"{p}:*", count=1000)]) for p in store.prefixes]
            return alerts, sizes
        finally:
            await client.aclose()

    alerts, sizes = loop.run_until_complete(run())
    assert sorted((essence(a) for a in alerts), key=lambda a: a["alert_id"]) == read_expected()
    assert min(sizes) > 0.2 * sum(sizes)  # each of the four shards holds about a quarter of the keys


def test_an_event_one_shard_refuses_and_another_counts_is_dead_lettered_as_late(
    redis_srv: RunningServer, loop: asyncio.AbstractEventLoop
) -> None:
    """Another worker's report reached shard 0's clock and not yet shard 1's: shard 0 refuses the
    batch's older events, shard 1 still counts them. The store names them; the pipeline returns
    them as late (to be dead-lettered) and keeps their details, since shard 1 counted them. An event
    without suspect mass goes to its parcel's home shard alone: refused or counted whole."""
    events = parse_valid(STREAM.read_bytes().splitlines())[:200]
    detector = Detector(load_reference(), load_rules(RULES_FILE), Pseudonymizer(SECRET.encode()))
    config = WindowConfig.for_rules(detector.rules.longest_window_s)
    lateness_ms = config.allowed_lateness_s * 1000
    times = sorted(e.event_time_ms for e in events)
    low, middle = times[0], times[len(times) // 2]

    async def run() -> tuple[BatchOutcome, PreparedBatch, ShardedWindowStore]:
        client = aioredis.from_url(redis_srv.url)
        try:
            store = ShardedWindowStore(client, config, prefix=next(_prefixes), shards=2)
            # this worker owns partition 0, worker B partition 1, which holds the late bound at the
            # batch's oldest event
            mine = ClockInput((PartitionReport(0, middle + lateness_ms, False),), 2, config.allowed_lateness_s)
            behind = (PartitionReport(1, low + lateness_ms, False),)
            await store.apply([], detector.rules, replace(mine, reports=mine.reports + behind))
            # B's next report, further on, has reached shard 0 only, so far
            ahead = (PartitionReport(1, middle + lateness_ms, False),)
            await store.shards[0].apply([], detector.rules, replace(mine, reports=ahead))
            prepared = prepare_batch(events, detector)
            return await apply_batch(prepared, store, mine), prepared, store
        finally:
            await client.aclose()

    outcome, prepared, store = loop.run_until_complete(run())
    details = prepared.details
    assert outcome.at.late_before == low  # the lower bound, shard 1's: no event is late everywhere
    late = {e.event_id: e for e in outcome.late}
    assert late and all(low <= e.event_time_ms < middle for e in late.values())  # refused by shard 0
    assert outcome.partly_late <= set(late)
    older = {e.event_id for e in events if e.event_time_ms < middle}
    wide = {u.event_id: u for u in prepared.parcels}
    # an event with suspect mass has entities in both shards: most of the older ones are late in shard 0 only
    with_mass = older - set(wide)
    assert with_mass and len(outcome.partly_late) >= 0.75 * len(with_mass)
    # one without goes to its parcel's home shard only: late there and so everywhere, or counted
    assert not outcome.partly_late & set(wide)
    assert {i for i in older & set(wide) if store.home_of(wide[i].parcel_key) == 0} == set(late) & set(wide)
    kept = {(d["parcel_id"], d["event_time_ms"]) for d in outcome.parcel_details}
    for event_id, event in late.items():
        key = (event.parcel_key, event.event_time_ms)
        if any((d["parcel_id"], d["event_time_ms"]) == key for d in details):
            assert (key in kept) == (event_id in outcome.partly_late)  # kept where shard 1 counted it


def test_a_deployment_refuses_a_shard_count_other_than_the_one_its_state_was_written_with(
    redis_srv: RunningServer, loop: asyncio.AbstractEventLoop
) -> None:
    clock = ClockInput((PartitionReport(0, None, idle=True),), 1, 0)

    async def run() -> None:
        client = aioredis.from_url(redis_srv.url)
        prefix = next(_prefixes)
        try:
            await ShardedWindowStore(client, CONFIG, prefix=prefix, shards=3).apply([], RULES, clock)
            with pytest.raises(ConfigError, match="written with 3 shards, and PARCELWATCH_REDIS_SHARDS is 1"):
                await ShardedWindowStore(client, CONFIG, prefix=prefix, shards=1).apply([], RULES, clock)
            with pytest.raises(ConfigError, match="set it back to 3"):
                await ShardedWindowStore(client, CONFIG, prefix=prefix, shards=6).suppress(ENTITIES[0], "rcpt", 2, 1)
            await ShardedWindowStore(client, CONFIG, prefix=prefix, shards=3).apply([], RULES, clock)
            assert await client.get(f"{prefix}:shards") == b"3"
        finally:
            await client.aclose()

    loop.run_until_complete(run())
