"""The window store, split across Redis Cluster masters: one :class:`RedisWindowStore` per shard
(one shard: the deployment's prefix itself, as without sharding).

Each shard is a whole window store under a prefix of its own (its own hash tag, so its own slot):
its entities, parked parcels, stream clock, due index and claims. An entity lives in one shard,
chosen from its tag; identity clusters live in shard 0. Every call goes to every shard, with the
same partition reports, concurrently: a shard's clock therefore moves only with calls that also
bring it the shard's part of the batch, and each shard judges and refuses with its own clock in
one atomic call, as the single store does (docs/windows.md, "Sharding").

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
from detectors.store_redis import EncodedBatch, RedisWindowStore, parcel_rows
from detectors.windows import ApplyStats, EntityUpdates, ParcelUpdate, Progress, RaisedAlert, WindowConfig

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
    parcels: Sequence[ParcelUpdate] = ()  # the parcel-wide updates, sent to every shard


class ShardedWindowStore:
    """The :class:`~detectors.store.WindowStore` over ``shards`` Redis window stores on one client
    (a Redis Cluster client spreads them over its masters)."""

    def __init__(self, client: Any, config: WindowConfig, prefix: str = "pw", shards: int = 2) -> None:
        self.prefixes = shard_prefixes(prefix, shards)
        self.shards = tuple(RedisWindowStore(client, config, prefix=p) for p in self.prefixes)
        # Every shard gets the parcel-wide updates (an entity of any shard may hold or take their
        # parcels); shard 0 counts them.
        for shard in self.shards[1:]:
            shard.counts_parcels = False
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

    def prepare(
        self,
        batch: Sequence[EntityUpdates],
        links: Sequence[ClusterEntry] = (),
        parcels: Sequence[ParcelUpdate] = (),
    ) -> ShardedBatch:
        if len(self.shards) == 1:
            return ShardedBatch(((list(batch), links, self.shards[0].prepare(batch, links, parcels)),), parcels)
        rows = parcel_rows(parcels)  # encoded once, for every shard
        parts = []
        for i, (shard, part) in enumerate(zip(self.shards, self._split(batch, lambda g: g.entity), strict=True)):
            part_links = links if i == 0 else ()
            parts.append((part, part_links, replace(shard.prepare(part, part_links), parcels=rows)))
        return ShardedBatch(tuple(parts), parcels)

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
        due = self._split(clock.due, lambda entity: entity)
        results = await asyncio.gather(
            *(
                shard.apply(part, rules, replace(clock, due=tuple(shard_due)), part_links, part_encoded)
                for shard, (part, part_links, part_encoded), shard_due in zip(
                    self.shards, request.parts, due, strict=True
                )
            )
        )
        stats = ApplyStats()
        alerts: list[RaisedAlert] = []
        still_due: list[EntityRef] = []
        for result in results:
            stats.add(result.stats)
            alerts.extend(result.alerts)
            still_due.extend(result.due)
        late_before = min(result.at.late_before for result in results)
        return BatchResult(
            stats,
            sorted(alerts, key=lambda a: (a.last_event_ms, a.alert_id)),
            Progress(min(result.at.check_until for result in results), late_before),
            tuple(still_due),
            *_refused(request, results, late_before),
        )

    async def acknowledge(self, alerts: Sequence[RaisedAlert]) -> None:
        parts = self._split(alerts, lambda alert: alert.entity)
        await asyncio.gather(*(shard.acknowledge(part) for shard, part in zip(self.shards, parts, strict=True) if part))

    async def suppress(self, entity: EntityRef, rule_id: str, until_ms: int, now_ms: int) -> None:
        await self.check_layout()
        await self.shards[self.shard_of(entity)].suppress(entity, rule_id, until_ms, now_ms)


def _refused(
    request: ShardedBatch, results: Sequence[BatchResult], late_before: int
) -> tuple[frozenset[str], frozenset[str]]:
    """Ids of events at or after ``late_before`` (the lowest shard's bound: those before it are late
    everywhere) that a shard with a later bound refused, and of those, the ones another shard counted.
    Nearly always no shard's bound is above the lowest (one worker, or one shard), and nothing is read."""
    ahead = [r.at.late_before > late_before for r in results]
    if not any(ahead):
        return frozenset(), frozenset()
    refused: set[str] = set()
    for (part, part_links, _), result, is_ahead in zip(request.parts, results, ahead, strict=True):
        if is_ahead:
            bound = result.at.late_before
            refused.update(
                u.event_id
                for u in _updates(part, part_links, request.parcels)
                if late_before <= u.event_time_ms < bound
            )
    counted = {
        u.event_id
        for (part, part_links, _), result in zip(request.parts, results, strict=True)
        for u in _updates(part, part_links, request.parcels)
        if u.event_id in refused and u.event_time_ms >= result.at.late_before
    }
    return frozenset(refused), frozenset(counted)


def _updates(
    part: list[EntityUpdates], links: Sequence[ClusterEntry], parcels: Sequence[ParcelUpdate]
) -> Iterator[ParcelUpdate]:
    """Every update a shard's part of a batch carries: its entities', its cluster links' and the
    parcel-wide ones (every shard gets those)."""
    for group in part:
        yield from group.updates
    for link in links:
        yield link.update
    yield from parcels
