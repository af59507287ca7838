"""The alert store in Redis: first writer wins per alert_id, listed by detection time.

Analysts' decisions sit beside each alert: its current status and the history of who decided
what, when and why. They are shown with the alert (``status``, ``decisions``) but never change
the alert document the detector wrote.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import orjson

from detectors.errors import AlertNotFound, FeedbackError

STATUSES = ("new", "confirmed", "false_positive")


class RedisAlertStore:
    def __init__(self, client: Any, prefix: str = "pw") -> None:
        self._client = client
        self._data = f"{prefix}:alerts:data"
        self._index = f"{prefix}:alerts:index"
        self._status = f"{prefix}:alerts:status"
        self._decisions = f"{prefix}:alerts:decisions"
        self._saved = f"{prefix}:alerts:saved"  # alert id -> wall-clock ms it was first stored

    async def save(self, alerts: Sequence[dict[str, Any]], now_ms: int) -> dict[str, int]:
        """Store ``alerts`` (first writer wins); returns those stored before, with when they first were.

        An alert stored before may already be on the alerts topic: a worker stores, then publishes,
        then acknowledges, and one that died in between left it to be handed out again.
        """
        if not alerts:
            return {}
        pipe = self._client.pipeline(transaction=False)
        ids = [alert["alert_id"] for alert in alerts]
        for alert in alerts:
            detected = datetime.fromisoformat(alert["last_event_time"].replace("Z", "+00:00")).timestamp()
            pipe.hsetnx(self._data, alert["alert_id"], orjson.dumps(alert))
            pipe.zadd(self._index, {alert["alert_id"]: detected}, nx=True)
            pipe.hsetnx(self._saved, alert["alert_id"], now_ms)
        pipe.hmget(self._saved, ids)
        *written, saved = await pipe.execute()
        # Alerts stored before the saved-time hash existed count as stored at the epoch.
        return {
            alert_id: int(first or 0) for alert_id, new, first in zip(ids, written[::3], saved, strict=True) if not new
        }

    async def get(self, alert_id: str) -> dict[str, Any]:
        alerts = await self._with_decisions([alert_id])
        if not alerts:
            raise AlertNotFound(f"no alert {alert_id!r} in the alert store")
        return alerts[0]

    async def record_decision(self, alert_id: str, decision: dict[str, Any]) -> None:
        """Append ``decision`` (its ``decision`` field is the new status) to the alert's history."""
        if decision.get("decision") not in STATUSES[1:]:
            raise FeedbackError(f"decision must be one of {', '.join(STATUSES[1:])}")
        if not await self._client.hexists(self._data, alert_id):
            raise AlertNotFound(f"no alert {alert_id!r} in the alert store")
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(self._status, alert_id, decision["decision"])
        pipe.rpush(f"{self._decisions}:{alert_id}", orjson.dumps(decision))
        await pipe.execute()

    async def _with_decisions(self, ids: Sequence[bytes | str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        pipe = self._client.pipeline(transaction=False)
        pipe.hmget(self._data, ids)
        pipe.hmget(self._status, ids)
        for alert_id in ids:
            key = alert_id.decode() if isinstance(alert_id, bytes) else alert_id
            pipe.lrange(f"{self._decisions}:{key}", 0, -1)
        raw, statuses, *histories = await pipe.execute()
        out = []
        for data, status, history in zip(raw, statuses, histories, strict=True):
            if data is None:
                continue
            alert = orjson.loads(data)
            alert["status"] = status.decode() if status else "new"
            alert["decisions"] = [orjson.loads(entry) for entry in history]
            out.append(alert)
        return out

    async def iter_all(self, page: int = 500) -> AsyncIterator[dict[str, Any]]:
        """Every alert with its status and decisions, oldest detection first."""
        start = 0
        while True:
            ids: list[bytes] = await self._client.zrange(self._index, start, start + page - 1)
            if not ids:
                return
            for alert in await self._with_decisions(ids):
                yield alert
            start += page
