"""The window store's contract: the core talks to state only through this Protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from detectors.clusters import ClusterEntry
from detectors.entities import EntityRef
from detectors.rules import RuleSet
from detectors.windows import ApplyStats, EntityUpdates, ParcelUpdate, Progress, RaisedAlert


@dataclass(frozen=True, slots=True)
class PartitionReport:
    """What one worker knows of one input partition it owns."""

    partition: int
    max_event_ms: int | None  # greatest event time read from it (this batch included), None if nothing yet
    idle: bool  # processed to its end and quiet for a while


@dataclass(frozen=True, slots=True)
class ClockInput:
    """The stream-clock part of a store call."""

    reports: tuple[PartitionReport, ...]
    partitions: int
    lateness_s: int
    due: tuple[EntityRef, ...] = ()  # entities the previous call said were due
    now_ms: int = 0  # wall clock, for analysts' suppressions and alert reclaims (event time decides windows)


@dataclass(frozen=True, slots=True)
class BatchResult:
    stats: ApplyStats
    alerts: list[RaisedAlert]
    at: Progress  # the horizon and late bound this call judged with
    due: tuple[EntityRef, ...] = field(default=())  # still due after this call (beyond its limit): pass them next time
    # A sharded store's shards may judge with late bounds above ``at.late_before`` (the lowest):
    # ids of events at or after it that some shard refused, and of those another shard counted.
    refused: frozenset[str] = field(default=frozenset())
    partly_late: frozenset[str] = field(default=frozenset())


class WindowStore(Protocol):
    def prepare(
        self,
        batch: Sequence[EntityUpdates],
        links: Sequence[ClusterEntry] = (),
        parcels: Sequence[ParcelUpdate] = (),
    ) -> object:
        """The part of a call to :meth:`apply` that depends on ``batch``, ``links`` and ``parcels``
        alone (the request, encoded), made ahead of it: the worker makes it while the previous call runs."""
        ...

    async def apply(
        self,
        batch: Sequence[EntityUpdates],
        rules: RuleSet,
        clock: ClockInput,
        links: Sequence[ClusterEntry] = (),
        encoded: object = None,
        parcels: Sequence[ParcelUpdate] = (),
    ) -> BatchResult:
        """One atomic step of the stream, in one round trip (``encoded``: what :meth:`prepare`
        made of this ``batch``, ``links`` and ``parcels``, or None to make it here):

        1. read the group-wide progress as it stood before this call (horizon, late bound);
        2. apply the parcel-wide updates ``parcels`` (:func:`detectors.windows.park_parcels`: no
           mass, no cancellation, for every entity that holds or takes their parcels) and the
           batch (late updates are refused), and judge the due entities and the batch's entities
           up to the horizon;
        3. add the batch's cluster ``links`` to the pending set and fold in those now final
           (:mod:`detectors.clusters`), judging the clusters they touch;
        4. merge this worker's partition reports, read the progress again and judge the entities
           (and cluster entries) it made due, up to the store's due limit; return those still due.

        Judging and refusing with the same progress, atomically, is what keeps alerts exact with
        several workers. The result carries every raised alert not yet acknowledged for the
        entities touched (new ones and ones a crash left unsent).
        """
        ...

    async def acknowledge(self, alerts: Sequence[RaisedAlert]) -> None:
        """Mark alerts as stored and published so that they are not returned again."""
        ...

    async def suppress(self, entity: EntityRef, rule_id: str, until_ms: int, now_ms: int) -> None:
        """An analyst's false positive: ``rule_id`` raises nothing for ``entity`` until ``until_ms`` (wall clock)."""
        ...
