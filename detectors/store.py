"""The window store's contract: the core talks to state only through this Protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from detectors.rules import RuleSet
from detectors.windows import ApplyStats, EntityUpdates, RaisedAlert


class WindowStore(Protocol):
    async def apply(self, batch: Sequence[EntityUpdates], rules: RuleSet) -> tuple[ApplyStats, list[RaisedAlert]]:
        """Apply a batch atomically per entity, in one round trip where the backend allows.

        Returns the counts per update status and every alert that is raised and not yet
        acknowledged for the entities of the batch (new ones and ones a crash left unsent).
        """
        ...

    async def acknowledge(self, alerts: Sequence[RaisedAlert]) -> None:
        """Mark alerts as stored and published so that they are not returned again."""
        ...
