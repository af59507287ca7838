"""The alert store in Redis: first writer wins per alert_id, listed by detection time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import orjson


class RedisAlertStore:
    def __init__(self, client: Any, prefix: str = "pw") -> None:
        self._client = client
        self._data = f"{prefix}:alerts:data"
        self._index = f"{prefix}:alerts:index"

    async def save(self, alerts: Sequence[dict[str, Any]]) -> None:
        if not alerts:
            return
        pipe = self._client.pipeline(transaction=False)
        for alert in alerts:
            detected = datetime.fromisoformat(alert["last_event_time"].replace("Z", "+00:00")).timestamp()
            pipe.hsetnx(self._data, alert["alert_id"], orjson.dumps(alert))
            pipe.zadd(self._index, {alert["alert_id"]: detected}, nx=True)
        await pipe.execute()

    async def iter_all(self, page: int = 500) -> AsyncIterator[dict[str, Any]]:
        """Every alert, oldest detection first."""
        start = 0
        while True:
            ids: list[bytes] = await self._client.zrange(self._index, start, start + page - 1)
            if not ids:
                return
            for raw in await self._client.hmget(self._data, ids):
                if raw is not None:
                    yield orjson.loads(raw)
            start += page
