"""The window store, split across Redis Cluster masters: one :class:`RedisWindowStore` per shard
(one shard: the deployment's prefix itself, as without sharding).

Each shard is a whole window store under a prefix of its own (its own hash tag, so its own slot):
its entities, parked parcels, stream clock, due index and claims. An entity lives in one shard,
chosen from its tag; identity clusters live in shard 0; a parcel's parcel-wide record lives in its
home shard, chosen from its key. A call first goes to the parcels' home shards (their parcel-wide
updates, the marks and pulls the entities of other shards need), then to every shard, with the same
partition reports, concurrently: a shard's clock therefore moves only with calls that also bring it
the shard's part of the batch, and each shard judges and refuses with its own clock in one atomic
call, as the single store does (docs/windows.md, "Sharding").

What differs from one store: with several workers the shards' clocks can stand a little apart
while calls interleave, so an event just at the late bound can be refused by one shard and
counted by another. The result names such events (``refused``, ``partly_late``); each entity's
windows stay exact.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import redis.exceptions
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from detectors.clusters import CLUSTER, ClusterEntry
from detectors.entities import EntityRef
from detectors.errors import ConfigError, StoreError
from detectors.rules import RuleSet
from detectors.store import BatchResult, ClockInput
from detectors.store_redis import EncodedBatch, RedisWindowStore
from detectors.windows import ApplyStats, EntityUpdates, ParcelUpdate, Progress, RaisedAlert, WindowConfig, parked_tag

MAX_SHARDS = 1024
T = TypeVar("T")


def shard_prefixes(prefix: str, shards: int) -> tuple[str, ...]:
    """The key prefix of each shard. One shard keeps ``prefix`` itself (a deployment's keys do not
    move when sharding is off).

    A prefix with a hash tag (``{pw}``, Redis Cluster) gives each shard a tag of its own, chosen so
    that shard ``i``'s slot falls in the ``i``-th of ``shards`` equal ranges of the 16384 slots:
    a cluster whose masters hold equal slot ranges (as ``redis-cli --cluster create`` makes them)
    then holds equal numbers of shards on each master when ``shards`` is a multiple of masters.
    """
    if not 1 <= shards <= MAX_SHARDS:
        raise ConfigError(f"redis shards must be between 1 and {MAX_SHARDS}, not {shards}")
    if shards == 1:
        return (prefix,)
    start, end = prefix.find("{"), prefix.find("}")
    if start < 0 or end <= start + 1:
        # no hash tag: one Redis server holds every shard (tests; it spreads nothing)
        return tuple(f"{prefix}.{i}" for i in range(shards))
    tag, rest = prefix[start + 1 : end], prefix[end + 1 :]
    out = []
    for i in range(shards):
        low, high = i * REDIS_CLUSTER_HASH_SLOTS // shards, (i + 1) * REDIS_CLUSTER_HASH_SLOTS // shards
        n = 0
        while not low <= key_slot(f"{tag}.{i}.{n}".encode()) < high:
            n += 1
        out.append(f"{prefix[:start]}{{{tag}.{i}.{n}}}{rest}")
    return tuple(out)


def shard_of(entity: EntityRef, shards: int) -> int:
    """The shard that holds ``entity``: clusters in shard 0 (the cluster stage reads and joins them
    all in one script), other entities by a CRC-32 of their tag (pseudonyms are uniform already)."""
    if shards == 1 or entity.entity_type == CLUSTER:
        return 0
    return zlib.crc32(entity.tag.encode()) % shards


@dataclass(frozen=True, slots=True)
class ShardedBatch:
    """A batch split by shard, each part encoded for its shard's script."""

    parts: tuple[tuple[list[EntityUpdates], Sequence[ClusterEntry], EncodedBatch], ...]
    # With several shards, the first call, to the parcels' home shards: each shard's parcel-wide
    # updates and its request (marks and pulls included), or None where it has nothing to do.
    homes: tuple[tuple[list[ParcelUpdate], EncodedBatch] | None, ...] = ()


class ShardedWindowStore:
    """The :class:`~detectors.store.WindowStore` over ``shards`` Redis window stores on one client
    (a Redis Cluster client spreads them over its masters)."""

    def __init__(self, client: Any, config: WindowConfig, prefix: str = "pw", shards: int = 2) -> None:
        self.prefixes = shard_prefixes(prefix, shards)
        self.shards = tuple(RedisWindowStore(client, config, prefix=p) for p in self.prefixes)
        self._client = client
        self._layout_key = f"{prefix}:shards"  # in the deployment's own slot, whatever the count
        self._layout_checked = False

    async def check_layout(self) -> None:
        """Record the shard count with the deployment's state, or refuse a count other than the one
        recorded: entities would be looked for in other shards, and their windows start afresh."""
        if self._layout_checked:
            return
        try:
            recorded = await self._client.set(self._layout_key, len(self.shards), nx=True, get=True)
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"reading the window store's shard count failed: {exc}") from exc
        if recorded is not None and int(recorded) != len(self.shards):
            raise ConfigError(
                f"this deployment's window state ({self._layout_key}) was written with {int(recorded)} "
                f"shards, and PARCELWATCH_REDIS_SHARDS is {len(self.shards)}: set it back to {int(recorded)}, "
                "or start the deployment afresh under another PARCELWATCH_REDIS_PREFIX"
            )
        self._layout_checked = True

    @property
    def config(self) -> WindowConfig:
        return self.shards[0].config

    @config.setter
    def config(self, config: WindowConfig) -> None:
        for shard in self.shards:
            shard.config = config

    @property
    def due_limit(self) -> int:
        return self.shards[0].due_limit

    @due_limit.setter
    def due_limit(self, limit: int) -> None:
        for shard in self.shards:
            shard.due_limit = limit

    @property
    def cluster_limit(self) -> int:
        return self.shards[0].cluster_limit

    @cluster_limit.setter
    def cluster_limit(self, limit: int) -> None:
        self.shards[0].cluster_limit = limit

    @property
    def round_trips(self) -> int:
        """Script calls made, all shards together (a call to every shard per batch, concurrently)."""
        return sum(shard.round_trips for shard in self.shards)

    def shard_of(self, entity: EntityRef) -> int:
        return shard_of(entity, len(self.shards))

    def _split(self, items: Iterable[T], entity_of: Callable[[T], EntityRef]) -> list[list[T]]:
        """``items`` by the shard of their entity, in their order."""
        parts: list[list[T]] = [[] for _ in self.shards]
        for item in items:
            parts[self.shard_of(entity_of(item))].append(item)
        return parts

    def home_of(self, parcel_key: str) -> int:
        """The shard that keeps a parcel's parcel-wide record (``windows.park_parcels``)."""
        return home_of(parcel_key, len(self.shards))

    def prepare(
        self,
        batch: Sequence[EntityUpdates],
        links: Sequence[ClusterEntry] = (),
        parcels: Sequence[ParcelUpdate] = (),
    ) -> ShardedBatch:
        if len(self.shards) == 1:
            return ShardedBatch(((list(batch), links, self.shards[0].prepare(batch, links, parcels)),))
        parts = []
        for i, (shard, part) in enumerate(zip(self.shards, self._split(batch, lambda g: g.entity), strict=True)):
            part_links = links if i == 0 else ()
            parts.append((part, part_links, shard.prepare(part, part_links)))
        # A parcel's parcel-wide record lives in its home shard only. An entity of another shard
        # whose update may make the parcel live there is marked at home (later parcel-wide updates
        # come back for it), and every parcel an entity of another shard is given is pulled from
        # home, for the second call (docs/windows.md, "Sharding").
        home_parcels: list[list[ParcelUpdate]] = [[] for _ in self.shards]
        for u in parcels:
            home_parcels[self.home_of(u.parcel_key)].append(u)
        marks: list[dict[tuple[str, str, str], None]] = [{} for _ in self.shards]
        pulls: list[dict[str, None]] = [{} for _ in self.shards]
        for i, (part, _, _) in enumerate(parts):
            for group in part:
                tag, member = parked_tag(group.entity), group.entity.tag
                for u in group.updates:
                    home = self.home_of(u.parcel_key)
                    if home != i:
                        pulls[home][u.parcel_key] = None
                        if u.mass_kg > 0:
                            marks[home][(u.parcel_key, tag, member)] = None
        homes: list[tuple[list[ParcelUpdate], EncodedBatch] | None] = []
        for shard, mine, marked, pulled in zip(self.shards, home_parcels, marks, pulls, strict=True):
            if mine or marked or pulled:
                request = replace(shard.prepare([], (), mine), marks=tuple(marked), pulls=tuple(pulled))
                homes.append((mine, request))
            else:
                homes.append(None)
        return ShardedBatch(tuple(parts), tuple(homes))

    async def apply(
        self,
        batch: Sequence[EntityUpdates],
        rules: RuleSet,
        clock: ClockInput,
        links: Sequence[ClusterEntry] = (),
        encoded: object = None,
        parcels: Sequence[ParcelUpdate] = (),
    ) -> BatchResult:
        await self.check_layout()
        request = encoded if isinstance(encoded, ShardedBatch) else self.prepare(batch, links, parcels)
        if len(self.shards) == 1:
            part, part_links, part_encoded = request.parts[0]
            return await self.shards[0].apply(part, rules, clock, part_links, part_encoded)
        # First call: the parcel-wide updates at their home shards, with no reports and nothing
        # due (the second call brings those), so it refuses with the progress the second reads.
        at_home = [(i, home) for i, home in enumerate(request.homes) if home is not None]
        first = await asyncio.gather(
            *(self.shards[i].call(home[1], rules, replace(clock, reports=(), due=())) for i, home in at_home)
        )
        wide: dict[str, str] = {}
        held: dict[EntityRef, list[ParcelUpdate]] = {}
        for (_, (mine, home_request)), (_, reply) in zip(at_home, first, strict=True):
            wide.update((pid, raw) for pid, raw in zip(home_request.pulls, reply.wide, strict=True) if raw)
            for member, index in reply.forward:
                held.setdefault(EntityRef(*member.split(":", 1)), []).append(mine[index - 1])
        held_by_shard = self._split(held.items(), lambda item: item[0])
        due = self._split(clock.due, lambda entity: entity)
        second = await asyncio.gather(
            *(
                shard.call(
                    replace(
                        part_encoded,
                        wide={pid: wide[pid] for pid in _parcels_of(part) if pid in wide},
                        held=tuple((entity, tuple(updates)) for entity, updates in shard_held),
                    ),
                    rules,
                    replace(clock, due=tuple(shard_due)),
                )
                for shard, (part, _, part_encoded), shard_due, shard_held in zip(
                    self.shards, request.parts, due, held_by_shard, strict=True
                )
            )
        )
        stats = ApplyStats()
        alerts: list[RaisedAlert] = []
        still_due: list[EntityRef] = []
        for result, _ in (*first, *second):
            stats.add(result.stats)
            alerts.extend(result.alerts)
        for result, _ in second:
            still_due.extend(result.due)
        results = [result for result, _ in (*first, *second)]
        late_before = min(result.at.late_before for result in results)
        calls = [
            (list(_updates(part, part_links)), result.at.late_before)
            for (part, part_links, _), (result, _) in zip(request.parts, second, strict=True)
        ]
        calls += [(home[0], result.at.late_before) for (_, home), (result, _) in zip(at_home, first, strict=True)]
        return BatchResult(
            stats,
            sorted(alerts, key=lambda a: (a.last_event_ms, a.alert_id)),
            Progress(min(result.at.check_until for result in results), late_before),
            tuple(still_due),
            *_refused(calls, late_before),
        )

    async def acknowledge(self, alerts: Sequence[RaisedAlert]) -> None:
        parts = self._split(alerts, lambda alert: alert.entity)
        await asyncio.gather(*(shard.acknowledge(part) for shard, part in zip(self.shards, parts, strict=True) if part))

    async def suppress(self, entity: EntityRef, rule_id: str, until_ms: int, now_ms: int) -> None:
        await self.check_layout()
        await self.shards[self.shard_of(entity)].suppress(entity, rule_id, until_ms, now_ms)


def _refused(
    calls: Sequence[tuple[Sequence[ParcelUpdate], int]], late_before: int
) -> tuple[frozenset[str], frozenset[str]]:
    """Ids of events at or after ``late_before`` (the lowest shard's bound: those before it are late
    everywhere) that a shard's call with a later bound refused, and of those, the ones another call
    counted. ``calls``: each call's updates and late bound. Nearly always no shard's bound is above
    the lowest (one worker, or one shard), and nothing is read."""
    if not any(bound > late_before for _, bound in calls):
        return frozenset(), frozenset()
    refused = {u.event_id for updates, bound in calls for u in updates if late_before <= u.event_time_ms < bound}
    counted = {
        u.event_id for updates, bound in calls for u in updates if u.event_id in refused and u.event_time_ms >= bound
    }
    return frozenset(refused), frozenset(counted)


def _updates(part: list[EntityUpdates], links: Sequence[ClusterEntry]) -> Iterator[ParcelUpdate]:
    """Every update a shard's part of a batch carries, its entities' and its cluster links'."""
    for group in part:
        yield from group.updates
    for link in links:
        yield link.update


def _parcels_of(part: list[EntityUpdates]) -> set[str]:
    return {u.parcel_key for group in part for u in group.updates}


def home_of(parcel_key: str, shards: int) -> int:
    """The shard that keeps a parcel's parcel-wide record: a CRC-32 of its key."""
    return 0 if shards == 1 else zlib.crc32(parcel_key.encode()) % shards
