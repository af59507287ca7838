"""In-process window store: the reference implementation of :mod:`detectors.windows`."""

from __future__ import annotations

from collections.abc import Sequence

from detectors.rules import RuleSet
from detectors.windows import ApplyStats, EntityState, EntityUpdates, RaisedAlert, WindowConfig, apply_entity


class MemoryWindowStore:
    def __init__(self, config: WindowConfig) -> None:
        self.config = config
        self.states: dict[tuple[str, str], EntityState] = {}

    async def apply(self, batch: Sequence[EntityUpdates], rules: RuleSet) -> tuple[ApplyStats, list[RaisedAlert]]:
        total = ApplyStats()
        alerts: list[RaisedAlert] = []
        for group in batch:
            ident = (group.entity.entity_type, group.entity.key)
            state = self.states.setdefault(ident, EntityState())
            stats, pending = apply_entity(
                state, group.entity, group.updates, rules.for_entity(group.entity.entity_type), self.config
            )
            total.add(stats)
            alerts.extend(pending)
        return total, sorted(alerts, key=lambda a: (a.last_event_ms, a.alert_id))

    async def acknowledge(self, alerts: Sequence[RaisedAlert]) -> None:
        for alert in alerts:
            state = self.states.get((alert.entity.entity_type, alert.entity.key))
            if state is not None:
                state.pending.pop(alert.alert_id, None)
