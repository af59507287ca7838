"""The alert queue in memory: one summary per alert, refreshed from Redis as alerts arrive.

Alert documents carry up to 200 evidence parcels each; the queue needs a dozen fields. The index
reads each alert once, keeps its summary, and on every refresh reads only the new ids and the
statuses (one hash), so a queue of 10,000 alerts is filtered and sorted in memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

SEVERITY_RANK = {"critical": 3, "high": 2, "medium": 1, "low": 0}
SUMMARY_FIELDS = (
    "alert_id",
    "rule",
    "severity",
    "entity_type",
    "entity_key",
    "entity_label",
    "episode",
    "parcel_count",
    "suspect_mass_kg",
    "first_event_time",
    "last_event_time",
)


@dataclass(frozen=True, slots=True)
class Filters:
    rule: str = ""
    severity: str = ""
    entity_type: str = ""
    status: str = ""
    date_from: str = ""  # YYYY-MM-DD, on the detection (last event) time
    date_to: str = ""

    @classmethod
    def from_query(cls, query: Any) -> Filters:
        return cls(**{name: str(query.get(name, "")).strip() for name in cls.__slots__})

    def keep(self, summary: dict[str, Any]) -> bool:
        day = summary["last_event_time"][:10]
        return (
            (not self.rule or summary["rule"] == self.rule)
            and (not self.severity or summary["severity"] == self.severity)
            and (not self.entity_type or summary["entity_type"] == self.entity_type)
            and (not self.status or summary["status"] == self.status)
            and (not self.date_from or day >= self.date_from)
            and (not self.date_to or day <= self.date_to)
        )


class AlertIndex:
    def __init__(self, client: Any, prefix: str = "pw", min_interval_s: float = 1.0) -> None:
        self._client = client
        self._index = f"{prefix}:alerts:index"
        self._data = f"{prefix}:alerts:data"
        self._status = f"{prefix}:alerts:status"
        self._min_interval_s = min_interval_s
        self._last = 0.0
        self.summaries: dict[str, dict[str, Any]] = {}

    async def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self._min_interval_s:
            return
        self._last = now
        ids = [i.decode() for i in await self._client.zrange(self._index, 0, -1)]
        new = [i for i in ids if i not in self.summaries]
        for start in range(0, len(new), 500):
            chunk = new[start : start + 500]
            for alert_id, raw in zip(chunk, await self._client.hmget(self._data, chunk), strict=True):
                if raw is not None:
                    alert = orjson.loads(raw)
                    self.summaries[alert_id] = {k: alert.get(k) for k in SUMMARY_FIELDS} | {"status": "new"}
        statuses = await self._client.hgetall(self._status)
        for alert_id, status in statuses.items():
            summary = self.summaries.get(alert_id.decode())
            if summary is not None:
                summary["status"] = status.decode()

    def query(self, filters: Filters) -> list[dict[str, Any]]:
        """Most severe first, then newest."""
        kept = [s for s in self.summaries.values() if filters.keep(s)]
        kept.sort(
            key=lambda s: (SEVERITY_RANK.get(s["severity"], -1), s["last_event_time"], s["alert_id"]), reverse=True
        )
        return kept

    def counts(self, alerts: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {"status": {}, "severity": {}}
        for s in alerts:
            out["status"][s["status"]] = out["status"].get(s["status"], 0) + 1
            out["severity"][s["severity"]] = out["severity"].get(s["severity"], 0) + 1
        return out

    def options(self) -> dict[str, list[str]]:
        """The values each filter can take, from what the store holds."""
        return {
            name: sorted({str(s[name]) for s in self.summaries.values()})
            for name in ("rule", "severity", "entity_type", "status")
        }

    def episodes(self, rule: str, entity_type: str, entity_key: str) -> list[dict[str, Any]]:
        same = [
            s
            for s in self.summaries.values()
            if (s["rule"], s["entity_type"], s["entity_key"]) == (rule, entity_type, entity_key)
        ]
        return sorted(same, key=lambda s: s["episode"])
