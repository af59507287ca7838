"""Window store on Redis 7 (core commands only): one Lua call per batch, atomic per entity.

Keys of one entity share the hash tag ``{<entity type>:<pseudonym>}``. A batch costs two
round trips: the stream clock (partition progress in, horizon and due entities out) and one
EVALSHA that applies every update and judges every due entity. The apply script also touches
the global due index, so it needs a single Redis (or one cluster slot); Redis Cluster support
is future work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from importlib import resources
from typing import Any

import orjson
import redis.exceptions

from detectors.entities import EntityRef
from detectors.errors import StoreError
from detectors.rules import RuleSet
from detectors.store import PartitionReport
from detectors.windows import (
    ApplyStats,
    EntityUpdates,
    Evidence,
    Progress,
    RaisedAlert,
    WindowConfig,
)

_APPLY_LUA = resources.files("detectors").joinpath("store_redis.lua").read_text(encoding="utf-8")
_CLOCK_LUA = resources.files("detectors").joinpath("store_clock.lua").read_text(encoding="utf-8")
_ACK_LUA = """
for i = 1, #ARGV do
  if redis.call('HDEL', KEYS[1], 'pa:' .. ARGV[i]) == 1 then redis.call('HINCRBY', KEYS[1], 'npa', -1) end
end
return 1
"""


def entity_keys(prefix: str, entity: EntityRef) -> list[str]:
    base = f"{prefix}:{{{entity.tag}}}"
    return [f"{base}:r", f"{base}:z", f"{base}:m"]


def alert_from_json(raw: str | bytes) -> RaisedAlert:
    data: dict[str, Any] = orjson.loads(raw)
    rc = data.get("rc") or {}
    return RaisedAlert(
        alert_id=data["id"],
        rule_id=data["rule"],
        entity=EntityRef(data["et"], data["key"]),
        episode=int(data["ep"]),
        window_s=int(data["ws"]),
        severity=data["sev"],
        suspect_mass_kg=round(float(data["sum"]), 3),
        total_weight_kg=round(float(data["tw"]), 3),
        parcel_count=int(data["n"]),
        first_event_ms=int(data["t0"]),
        last_event_ms=int(data["t1"]),
        evidence=tuple(
            Evidence(p, int(a), round(float(m), 3), round(float(w), 3), tuple(filter(None, rs.split(","))))
            for p, a, m, w, rs in data["ev"]
        ),
        reason_counts=tuple(sorted((code, int(n)) for code, n in rc.items())),
    )


class RedisWindowStore:
    def __init__(self, client: Any, config: WindowConfig, prefix: str = "pw", cluster: bool = False) -> None:
        self._client = client
        self._config = config
        self._prefix = prefix
        self._apply = client.register_script(_APPLY_LUA)
        self._ack = client.register_script(_ACK_LUA)
        self._clock = client.register_script(_CLOCK_LUA)
        self._clock_keys = [f"{prefix}:clock:max", f"{prefix}:clock:idle", f"{prefix}:due"]
        self.due_limit = 1000
        self.round_trips = 0

    async def advance(self, reports: Sequence[PartitionReport], partitions: int, lateness_s: int) -> Progress:
        args: list[str | int] = [partitions, lateness_s * 1000, self.due_limit]
        for report in reports:
            args += [
                report.partition,
                "" if report.max_event_ms is None else report.max_event_ms,
                1 if report.idle else 0,
            ]
        try:
            raw = await self._clock(keys=self._clock_keys, args=args)
            self.round_trips += 1
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"stream clock update failed: {exc}") from exc
        check_until, late_before, due = orjson.loads(raw)
        members = due if isinstance(due, list) else []
        entities = tuple(EntityRef(*m.split(":", 1)) for m in members)
        return Progress(int(float(check_until)), int(float(late_before)), entities)

    def _request(self, groups: Sequence[EntityUpdates], rules: RuleSet, at: Progress) -> tuple[list[str], bytes]:
        keys: list[str] = []
        entities: list[dict[str, Any]] = []
        kinds: set[str] = set()
        for group in groups:
            keys.extend(entity_keys(self._prefix, group.entity))
            kinds.add(group.entity.entity_type)
            entities.append(
                {
                    "et": group.entity.entity_type,
                    "key": group.entity.key,
                    "u": [
                        [
                            u.parcel_key,
                            u.event_time_ms,
                            u.mass_kg,
                            u.weight_kg,
                            u.rank,
                            u.event_id,
                            1 if u.cancelled else 0,
                            ",".join(u.reasons),
                        ]
                        for u in group.updates
                    ],
                }
            )
        cfg = self._config
        payload = {
            "cfg": {
                "retention_ms": cfg.retention_s * 1000,
                "max_parcels": cfg.max_parcels_per_entity,
                "max_evidence": cfg.max_evidence,
                "ttl_ms": cfg.idle_ttl_s * 1000,
                "check_until": at.check_until,
                "late_before": at.late_before,
            },
            "rules": {
                kind: [
                    [r.id, r.window_s * 1000, r.threshold_kg, r.min_parcels, r.regrow_factor, r.severity, r.window_s]
                    for r in rules.for_entity(kind)
                ]
                for kind in sorted(kinds)
            },
            "entities": entities,
        }
        keys.append(self._clock_keys[2])
        return keys, orjson.dumps(payload)

    async def apply(
        self, batch: Sequence[EntityUpdates], rules: RuleSet, at: Progress
    ) -> tuple[ApplyStats, list[RaisedAlert]]:
        stats = ApplyStats()
        in_batch = {group.entity for group in batch}
        batch = list(batch) + [EntityUpdates(e, ()) for e in at.due if e not in in_batch]
        if not batch:
            return stats, []
        try:
            keys, args = self._request(batch, rules, at)
            replies = [await self._apply(keys=keys, args=[args])]
            self.round_trips += 1
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"window store update failed: {exc}") from exc
        alerts: dict[str, RaisedAlert] = {}
        for reply in replies:
            decoded = orjson.loads(reply)
            for key, value in decoded["stats"].items():
                stats.counts[key] += int(value)
            pending = decoded["alerts"]
            for raw in pending if isinstance(pending, list) else []:
                alert = alert_from_json(raw)
                alerts[alert.alert_id] = alert
        return stats, sorted(alerts.values(), key=lambda a: (a.last_event_ms, a.alert_id))

    async def acknowledge(self, alerts: Sequence[RaisedAlert]) -> None:
        if not alerts:
            return
        by_entity: dict[EntityRef, list[str]] = defaultdict(list)
        for alert in alerts:
            by_entity[alert.entity].append(alert.alert_id)
        try:
            pipe = self._client.pipeline(transaction=False)
            for entity, ids in by_entity.items():
                await self._ack(keys=[entity_keys(self._prefix, entity)[2]], args=ids, client=pipe)
            await pipe.execute()
            self.round_trips += 1
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"alert acknowledgement failed: {exc}") from exc
