"""Window store on Redis 7 (core commands only): one Lua call per batch, atomic per entity.

Keys of one entity share the hash tag ``{<entity type>:<pseudonym>}``. On a single Redis the
whole batch goes in one EVALSHA; against Redis Cluster a script may only touch one slot, so
the batch is split by slot and the calls pipelined (one round trip per node).
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
from detectors.windows import (
    ApplyStats,
    EntityUpdates,
    Evidence,
    RaisedAlert,
    WindowConfig,
)

_APPLY_LUA = resources.files("detectors").joinpath("store_redis.lua").read_text(encoding="utf-8")
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
        self._cluster = cluster
        self._apply = client.register_script(_APPLY_LUA)
        self._ack = client.register_script(_ACK_LUA)
        self.round_trips = 0

    def _request(self, groups: Sequence[EntityUpdates], rules: RuleSet) -> tuple[list[str], bytes]:
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
                "lateness_ms": cfg.allowed_lateness_s * 1000,
                "retention_ms": cfg.retention_s * 1000,
                "max_parcels": cfg.max_parcels_per_entity,
                "max_evidence": cfg.max_evidence,
                "ttl_ms": cfg.idle_ttl_s * 1000,
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
        return keys, orjson.dumps(payload)

    def _slot_groups(self, batch: Sequence[EntityUpdates]) -> list[Sequence[EntityUpdates]]:
        if not self._cluster:
            return [batch]
        by_slot: dict[int, list[EntityUpdates]] = defaultdict(list)
        for group in batch:
            by_slot[self._client.keyslot(entity_keys(self._prefix, group.entity)[0])].append(group)
        return list(by_slot.values())

    async def apply(self, batch: Sequence[EntityUpdates], rules: RuleSet) -> tuple[ApplyStats, list[RaisedAlert]]:
        stats = ApplyStats()
        if not batch:
            return stats, []
        try:
            requests = [self._request(groups, rules) for groups in self._slot_groups(batch)]
            if len(requests) == 1:
                keys, args = requests[0]
                replies = [await self._apply(keys=keys, args=[args])]
            else:
                pipe = self._client.pipeline(transaction=False)
                for keys, args in requests:
                    await self._apply(keys=keys, args=[args], client=pipe)
                replies = await pipe.execute()
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
