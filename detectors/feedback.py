"""Analysts' decisions fed back into detection.

A false positive suppresses the alert's rule for the alert's entity in the window store, for a
while (wall-clock time: the decision is about the entity, not about a stretch of the stream);
while it lasts, windows that cross raise nothing for that rule and entity, and the store counts
them as suppressed. A confirmation is kept for reporting. Both go into the alert's history.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from detectors.alert_store import STATUSES, RedisAlertStore
from detectors.entities import EntityRef
from detectors.errors import FeedbackError
from detectors.store import WindowStore

DEFAULT_SUPPRESSION_S = 90 * 86400


@dataclass(frozen=True, slots=True)
class Decision:
    alert_id: str
    decision: str  # confirmed | false_positive
    analyst: str
    note: str
    at_ms: int
    suppressed_until_ms: int | None  # set for a false positive

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def decide(
    alerts: RedisAlertStore,
    windows: WindowStore,
    alert_id: str,
    decision: str,
    analyst: str,
    note: str,
    now_ms: int,
    suppress_for_s: int = DEFAULT_SUPPRESSION_S,
) -> Decision:
    """Record ``decision`` on the alert; a false positive also suppresses its (rule, entity)."""
    if decision not in STATUSES[1:]:
        raise FeedbackError(f"decision must be one of {', '.join(STATUSES[1:])}, not {decision!r}")
    if not analyst.strip():
        raise FeedbackError("a decision needs the analyst's name")
    if suppress_for_s <= 0:
        raise FeedbackError("the suppression must last a positive number of seconds")
    alert = await alerts.get(alert_id)
    until = None
    if decision == "false_positive":
        until = now_ms + suppress_for_s * 1000
        await windows.suppress(EntityRef(alert["entity_type"], alert["entity_key"]), alert["rule"], until, now_ms)
    recorded = Decision(alert_id, decision, analyst.strip(), note, now_ms, until)
    await alerts.record_decision(alert_id, recorded.as_dict())
    return recorded
