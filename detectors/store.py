"""The window store's contract: the core talks to state only through this Protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from detectors.rules import RuleSet
from detectors.windows import ApplyStats, EntityUpdates, Progress, RaisedAlert


@dataclass(frozen=True, slots=True)
class PartitionReport:
    """What one worker knows of one input partition it owns."""

    partition: int
    max_event_ms: int | None  # greatest event time read from it, None if nothing yet
    idle: bool  # read to its end and quiet for a while


class WindowStore(Protocol):
    async def advance(self, reports: Sequence[PartitionReport], partitions: int, lateness_s: int) -> Progress:
        """Record partition progress; return the horizon, the lateness bound and the due entities."""
        ...

    async def apply(
        self, batch: Sequence[EntityUpdates], rules: RuleSet, at: Progress
    ) -> tuple[ApplyStats, list[RaisedAlert]]:
        """Apply a batch and judge the due entities, atomically per entity, in one round trip
        where the backend allows.

        Returns the counts per update status and every alert that is raised and not yet
        acknowledged for the entities touched (new ones and ones a crash left unsent).
        """
        ...

    async def acknowledge(self, alerts: Sequence[RaisedAlert]) -> None:
        """Mark alerts as stored and published so that they are not returned again."""
        ...
