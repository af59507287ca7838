"""In-process window store: the reference implementation of :mod:`detectors.windows`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from detectors.clusters import CLUSTER, ClusterEntry, merge_into, survivor
from detectors.entities import EntityRef
from detectors.rules import RuleSet
from detectors.store import BatchResult, ClockInput
from detectors.windows import (
    FAR_PAST_MS,
    ApplyStats,
    EntityState,
    EntityUpdates,
    ParcelUpdate,
    Parked,
    Progress,
    RaisedAlert,
    WindowConfig,
    apply_entity,
    park_parcels,
    park_updates,
    progress,
)


class MemoryWindowStore:
    def __init__(self, config: WindowConfig, due_limit: int = 1000, cluster_limit: int = 5000) -> None:
        self.config = config
        self.due_limit = due_limit
        self.cluster_limit = cluster_limit
        self.states: dict[EntityRef, EntityState] = {}
        # Records of parcels that never counted (windows.park_updates). Redis expires them a
        # retention after their last update (wall clock); this store keeps them: it serves tests and
        # benchmarks of bounded streams.
        self.parked: Parked = {}
        self.pending: dict[bytes, int] = {}  # cluster entries waiting for the horizon -> their event time
        self.parent: dict[str, str] = {}  # identifier -> the identifier it was joined under
        self.unacknowledged: set[EntityRef] = set()  # entities holding pending alerts (Redis: the claims index)
        self.maxima: dict[int, int] = {}
        self.idle: set[int] = set()

    def _progress(self, clock: ClockInput) -> Progress:
        return progress(self.maxima, self.idle, clock.partitions, clock.lateness_s * 1000)

    def _due(self, at: Progress) -> tuple[EntityRef, ...]:
        # Same order as the Redis due index: by first unjudged end, then member bytes.
        due = sorted(
            (state.check_from, f"{entity.entity_type}:{entity.key}".encode(), entity)
            for entity, state in self.states.items()
            if state.check_from is not None and state.check_from < at.check_until
        )
        return tuple(entity for _, _, entity in due[: self.due_limit])

    def prepare(
        self,
        batch: Sequence[EntityUpdates],
        links: Sequence[ClusterEntry] = (),
        parcels: Sequence[ParcelUpdate] = (),
    ) -> object:
        return None  # nothing to encode ahead

    async def apply(
        self,
        batch: Sequence[EntityUpdates],
        rules: RuleSet,
        clock: ClockInput,
        links: Sequence[ClusterEntry] = (),
        encoded: object = None,
        parcels: Sequence[ParcelUpdate] = (),
    ) -> BatchResult:
        at = self._progress(clock)
        total = ApplyStats()
        alerts: dict[str, RaisedAlert] = {}

        def run(entity: EntityRef, updates: Sequence[ParcelUpdate], upto: Progress, judge_from: int | None) -> None:
            state = self.states.setdefault(entity, EntityState())
            stats, pending = apply_entity(
                state,
                entity,
                updates,
                rules.for_entity(entity.entity_type),
                self.config,
                upto,
                clock.now_ms,
                judge_from,
                None if entity.entity_type == CLUSTER else self.parked,
            )
            total.add(stats)
            alerts.update((a.alert_id, a) for a in pending)
            if pending:
                self.unacknowledged.add(entity)

        in_batch = {group.entity for group in batch}
        later = [e for e in clock.due if e not in in_batch and e.entity_type == CLUSTER]
        due = set(clock.due)
        # First the parcel-wide updates are parked, and applied to the entities that hold their
        # parcels; then every other update that cannot make a record live is parked; then the
        # entities left with updates, or due, are applied and judged (the Redis store's script does
        # the same, in this order).
        for entity, updates in park_parcels(self.parked, parcels, at.late_before, total).items():
            # where its records still hold the parcel: a record pruned or evicted leaves its mark
            records = self.states[entity].records
            held = [u for u in updates if u.parcel_key in records]
            if held:
                run(entity, held, at, None)
        rest = [
            EntityUpdates(
                group.entity, tuple(park_updates(self.parked, group.entity, group.updates, at.late_before, total))
            )
            for group in batch
            if group.entity.entity_type != CLUSTER
        ]
        for group in rest + [EntityUpdates(e, ()) for e in clock.due if e not in in_batch and e.entity_type != CLUSTER]:
            if group.updates or group.entity in due:
                run(group.entity, group.updates, at, None)
        self.pending.update(
            (entry.encode(), entry.update.event_time_ms)
            for entry in links
            if entry.update.event_time_ms >= at.late_before
        )
        self._judge_clusters(at.check_until, later, run)
        self._merge_reports(clock)
        alerts.update((a.alert_id, a) for a in self._reclaim(clock.now_ms))
        # The reports may have moved the horizon: judge what they made final now, not one call later.
        after = self._progress(clock)
        made_due = self._due(after)
        for entity in made_due:
            if entity.entity_type != CLUSTER:
                run(entity, (), after, None)
        self._judge_clusters(after.check_until, [e for e in made_due if e.entity_type == CLUSTER], run)
        ordered = sorted(alerts.values(), key=lambda a: (a.last_event_ms, a.alert_id))
        return BatchResult(total, ordered, at, self._due(after))

    def _judge_clusters(
        self,
        horizon: int,
        later: Sequence[EntityRef],
        run: Callable[[EntityRef, Sequence[ParcelUpdate], Progress, int | None], None],
    ) -> None:
        """Fold in the cluster entries final before ``horizon``; judge the clusters touched and ``later``."""
        cluster_until, touched = self._advance_clusters(horizon, run)
        for entity in sorted(touched | set(later), key=lambda e: e.key.encode()):
            if entity.key not in self.parent:  # still a root
                run(entity, (), Progress(cluster_until, FAR_PAST_MS), None)

    def _merge_reports(self, clock: ClockInput) -> None:
        for report in clock.reports:
            if report.max_event_ms is not None:
                self.maxima[report.partition] = max(
                    self.maxima.get(report.partition, report.max_event_ms), report.max_event_ms
                )
            if report.idle:
                self.idle.add(report.partition)
            else:
                self.idle.discard(report.partition)

    def _reclaim(self, now_ms: int) -> list[RaisedAlert]:
        """Alerts still unacknowledged ``reclaim_after_s`` after they were handed out, claimed anew.

        Same selection as the Redis store: entities by oldest claim, then member bytes, at most
        ``due_limit`` of them.
        """
        before = now_ms - self.config.reclaim_after_s * 1000
        self.unacknowledged = {e for e in self.unacknowledged if self.states[e].pending}
        waiting = sorted(
            (min(state.claimed_ms[a] for a in state.pending), f"{entity.entity_type}:{entity.key}".encode(), entity)
            for entity, state in ((e, self.states[e]) for e in self.unacknowledged)
        )
        out = []
        for oldest, _, entity in waiting[: self.due_limit]:
            if oldest > before:
                break
            state = self.states[entity]
            for alert_id, alert in state.pending.items():
                if state.claimed_ms[alert_id] <= before:
                    state.claimed_ms[alert_id] = now_ms
                    out.append(alert)
        return out

    def _root(self, node: str) -> str:
        while node in self.parent:
            node = self.parent[node]
        return node

    def _advance_clusters(
        self, horizon: int, run: Callable[[EntityRef, Sequence[ParcelUpdate], Progress, int | None], None]
    ) -> tuple[int, set[EntityRef]]:
        """Fold the final cluster entries in, oldest first; return how far cluster ends are final."""
        ready = sorted((t, member) for member, t in self.pending.items() if t < horizon)
        touched: set[EntityRef] = set()
        for t, member in ready[: self.cluster_limit]:
            del self.pending[member]
            entry = ClusterEntry.decode(member)
            roots = sorted({self._root(node) for node in entry.nodes}, key=str.encode)
            for root in roots:  # their ends before t are final: judge them before anything changes
                run(EntityRef(CLUSTER, root), (), Progress(t, FAR_PAST_MS), None)
            keep = roots[0]
            for root in roots[1:]:
                keep = survivor(
                    (keep, len(self.states[EntityRef(CLUSTER, keep)].records)),
                    (root, len(self.states[EntityRef(CLUSTER, root)].records)),
                )
            for root in roots:
                if root != keep:
                    absorbed = EntityRef(CLUSTER, root)
                    self.states[absorbed] = merge_into(self.states[EntityRef(CLUSTER, keep)], self.states[absorbed])
                    self.parent[root] = keep
                    touched.discard(absorbed)
            for node in entry.nodes:
                if node != keep:
                    self.parent[node] = keep
            run(EntityRef(CLUSTER, keep), (entry.update,), Progress(t, FAR_PAST_MS), t)
            touched.add(EntityRef(CLUSTER, keep))
        until = ready[self.cluster_limit][0] if len(ready) > self.cluster_limit else horizon
        return until, touched

    async def acknowledge(self, alerts: Sequence[RaisedAlert]) -> None:
        for alert in alerts:
            state = self.states.get(alert.entity)
            if state is not None:
                state.pending.pop(alert.alert_id, None)
                state.claimed_ms.pop(alert.alert_id, None)

    async def suppress(self, entity: EntityRef, rule_id: str, until_ms: int, now_ms: int) -> None:
        self.states.setdefault(entity, EntityState()).suppressed_until[rule_id] = until_ms
