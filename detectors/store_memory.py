"""In-process window store: the reference implementation of :mod:`detectors.windows`."""

from __future__ import annotations

from collections.abc import Sequence

from detectors.entities import EntityRef
from detectors.rules import RuleSet
from detectors.store import BatchResult, ClockInput
from detectors.windows import (
    ApplyStats,
    EntityState,
    EntityUpdates,
    Progress,
    RaisedAlert,
    WindowConfig,
    apply_entity,
    progress,
)


class MemoryWindowStore:
    def __init__(self, config: WindowConfig, due_limit: int = 1000) -> None:
        self.config = config
        self.due_limit = due_limit
        self.states: dict[EntityRef, EntityState] = {}
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

    async def apply(self, batch: Sequence[EntityUpdates], rules: RuleSet, clock: ClockInput) -> BatchResult:
        at = self._progress(clock)
        total = ApplyStats()
        alerts: list[RaisedAlert] = []
        in_batch = {group.entity for group in batch}
        for group in list(batch) + [EntityUpdates(e, ()) for e in clock.due if e not in in_batch]:
            state = self.states.setdefault(group.entity, EntityState())
            stats, pending = apply_entity(
                state,
                group.entity,
                group.updates,
                rules.for_entity(group.entity.entity_type),
                self.config,
                at,
                clock.now_ms,
            )
            total.add(stats)
            alerts.extend(pending)
        for report in clock.reports:
            if report.max_event_ms is not None:
                self.maxima[report.partition] = max(
                    self.maxima.get(report.partition, report.max_event_ms), report.max_event_ms
                )
            if report.idle:
                self.idle.add(report.partition)
            else:
                self.idle.discard(report.partition)
        alerts.sort(key=lambda a: (a.last_event_ms, a.alert_id))
        return BatchResult(total, alerts, at, self._due(self._progress(clock)))

    async def acknowledge(self, alerts: Sequence[RaisedAlert]) -> None:
        for alert in alerts:
            state = self.states.get(alert.entity)
            if state is not None:
                state.pending.pop(alert.alert_id, None)

    async def suppress(self, entity: EntityRef, rule_id: str, until_ms: int, now_ms: int) -> None:
        self.states.setdefault(entity, EntityState()).suppressed_until[rule_id] = until_ms
