"""Window store on Redis 7 (core commands only): one Lua call per batch, atomic per entity.

Keys of one entity share the hash tag ``{<entity type>:<pseudonym>}``. A batch costs one round
trip: one EVALSHA reads the stream clock, applies every update, judges every due entity, merges
the partition reports, judges what they made due and returns the entities still due. Acknowledging
alerts adds one when there are alerts. The script also touches the clock and the global due index,
so all of a deployment's keys share one hash slot on Redis Cluster (docs/windows.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson
import redis.exceptions

from detectors.clusters import CLUSTER, ClusterEntry
from detectors.entities import EntityRef
from detectors.errors import StoreError
from detectors.rules import RuleSet
from detectors.store import BatchResult, ClockInput
from detectors.windows import (
    PARKED_KEY_CHARS,
    ApplyStats,
    EntityUpdates,
    Evidence,
    ParcelUpdate,
    Progress,
    RaisedAlert,
    WindowConfig,
    parked_tag,
    update_row,
)

_APPLY_LUA = resources.files("detectors").joinpath("store_redis.lua").read_text(encoding="utf-8")
# KEYS[1] the claims index, then the records hash of each entity (its meta fields); ARGV per entity: its member, the
# number of its alert ids, the ids. One call for the whole batch (a Redis Cluster pipeline cannot
# carry scripts; every key of a deployment shares one hash slot there, see docs/windows.md).
_ACK_LUA = """
local at = 1
for k = 2, #KEYS do
  local member, n = ARGV[at], tonumber(ARGV[at + 1])
  for i = at + 2, at + 1 + n do
    if redis.call('HDEL', KEYS[k], 'pa!' .. ARGV[i]) == 1 then redis.call('HINCRBY', KEYS[k], 'npa', -1) end
    redis.call('HDEL', KEYS[k], 'pc!' .. ARGV[i])
  end
  if tonumber(redis.call('HGET', KEYS[k], 'npa') or '0') <= 0 then redis.call('ZREM', KEYS[1], member) end
  at = at + 2 + n
end
return 1
"""
# KEYS[1] the entity's records hash (its meta fields), KEYS[2] its anchors; ARGV rule id, until (ms),
# now (ms). Keeps both at least until then (the store never shortens the expiry of either); a
# deployment without idle expiry keeps its keys without one.
_SUPPRESS_LUA = """
local fresh = redis.call('EXISTS', KEYS[1]) == 0
redis.call('HSET', KEYS[1], 'sup!' .. ARGV[1], ARGV[2])
local left = tonumber(ARGV[2]) - tonumber(ARGV[3])
if left > 0 then
  for _, key in ipairs(KEYS) do
    local ttl = redis.call('PTTL', key)
    if (ttl >= 0 and ttl < left) or (fresh and ttl == -1) then redis.call('PEXPIRE', key, left) end
  end
end
return 1
"""


def _waybill(parcel_key: str) -> str:
    return parcel_key.split(":", 1)[-1]


def stored_event_id(event_id: str, parcel_key: str) -> str:
    """The event id as a record of ``parcel_key`` writes it (the script's ``vid_out``): the parcel's
    waybill, where the id names it, as the byte 1, once. Couriers name events by their waybills, and
    the record's key names the parcel already: of the 28 bytes of a typical id, some 20 (measured on
    benchmarks/core.py's stream), in every parked string of every parcel. An id holding the byte 1 or
    starting with the byte 2 is written whole after a byte 2, so that every id reads back as it was.
    """
    if event_id.startswith("\x02") or "\x01" in event_id:
        return "\x02" + event_id
    waybill = _waybill(parcel_key)
    return event_id.replace(waybill, "\x01", 1) if waybill else event_id


def event_id_of(stored: str, parcel_key: str) -> str:
    """The event id a record of ``parcel_key`` wrote as ``stored`` (the script's ``vid_in``)."""
    if stored.startswith("\x02"):
        return stored[1:]
    return stored.replace("\x01", _waybill(parcel_key), 1)


def _row(u: ParcelUpdate) -> list[object]:
    """An update as the script reads it (``update_row``), and last the record its entities' first
    accepted update writes, as the script encodes one (``encode``): anchor and version time are
    the update's time (the version's left empty for it), a zero mass is ``0``. Written here once
    per update, not in Lua once per entity: formatting numbers was much of the script's time."""
    row = update_row(u)
    cancelled, reasons = row[6], row[7]
    mass = "0" if cancelled or not u.mass_kg else repr(float(u.mass_kg))
    vid = stored_event_id(u.event_id, u.parcel_key)
    row.append(f"{u.event_time_ms}|{mass}|{float(u.weight_kg)!r}|{u.rank}||{cancelled}|{reasons}|{vid}")
    return row


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """A batch's updates and cluster links as the script reads them, encoded ahead of the call."""

    entities: dict[EntityRef, int]  # each entity's number in ``entities_json``, from 1 as Lua counts
    rows: orjson.Fragment
    entities_json: orjson.Fragment
    links: orjson.Fragment
    parcels: orjson.Fragment = orjson.Fragment(b"[]")  # the parcel-wide updates' rows
    # A sharded store's (store_sharded.py): to a parcel's home shard, entities of other shards that
    # may take it (parcel, parked tag, member) and parcels whose parcel-wide record to return; to
    # an entity's shard, those records and the parcel-wide updates for the entities that hold them.
    marks: tuple[tuple[str, str, str], ...] = ()
    pulls: tuple[str, ...] = ()
    wide: dict[str, str] = field(default_factory=dict)
    held: tuple[tuple[EntityRef, tuple[ParcelUpdate, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class CallReply:
    """What one script call answered besides its :class:`BatchResult`: for a sharded store."""

    forward: list[tuple[str, int]]  # (member of another shard's entity, index of a parcel-wide update)
    wide: list[str]  # each pulled parcel's parcel-wide record as the script encodes one, or ''


def parcel_rows(parcels: Sequence[ParcelUpdate]) -> orjson.Fragment:
    """The parcel-wide updates (``windows.park_parcels``) as the script reads them: one row each."""
    return orjson.Fragment(orjson.dumps([_row(u) for u in parcels]))


def _entity_json(entity: EntityRef, rows: list[int]) -> dict[str, Any]:
    """One entity of a store call as the script reads it: type, key and the numbers of its rows."""
    return {"et": entity.entity_type, "key": entity.key, "u": rows}


def entity_keys(prefix: str, entity: EntityRef) -> list[str]:
    base = f"{prefix}:{{{entity.tag}}}"
    return [f"{base}:r", f"{base}:z"]


# The script's one-letter codes of entity types in parked tags (store_redis.lua: TYPE_CODE).
_PARKED_TYPES = {
    "a": "sender_phone",
    "b": "sender_account",
    "c": "sender_address",
    "d": "recipient",
    "e": "recipient_address",
    "f": "pickup_point",
}


def parked_records(raw: bytes) -> dict[str, bytes]:
    """A parcel's parked string (``<prefix>:p:<parcel key>``) as parked tag (``windows.parked_tag``:
    ``<type>:<start of key>``, or ``windows.PARCEL_WIDE``) -> its record as the script encodes one,
    or ``b"*<type>:<key>"`` where that entity holds the record (``b"*"`` in strings written before
    holders were named).

    For each distinct value the string holds ``<bytes>:<value><tag> <tag>...\\n``: the value is read
    by its length, as an event id may hold any character. A tag written with the whole key (before
    tags were cut) is read cut, as the script reads it.
    """
    out: dict[str, bytes] = {}
    pos = 0
    while pos < len(raw):
        colon = raw.index(b":", pos)
        stop = colon + 1 + int(raw[pos:colon])
        value = raw[colon + 1 : stop]
        eol = raw.index(b"\n", stop)
        for tag in raw[stop:eol].decode().split(" "):
            code = _PARKED_TYPES.get(tag[0])
            out[parked_tag(EntityRef(code, tag[1:])) if code and ":" not in tag else tag] = value
        pos = eol + 1
    return out


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
    def __init__(self, client: Any, config: WindowConfig, prefix: str = "pw") -> None:
        self._client = client
        self._config = config
        self._prefix = prefix
        self._apply = client.register_script(_APPLY_LUA)
        self._ack = client.register_script(_ACK_LUA)
        self._suppress = client.register_script(_SUPPRESS_LUA)
        self._claims_key = f"{prefix}:claims"
        self._clock_keys = [f"{prefix}:clock:max", f"{prefix}:clock:idle", f"{prefix}:due", self._claims_key]
        self.due_limit = 1000
        self.cluster_limit = 5000
        self.round_trips = 0

    @property
    def config(self) -> WindowConfig:
        return self._config

    @config.setter
    def config(self, config: WindowConfig) -> None:
        """Takes effect from the next call (rules reloaded while running may reach further back)."""
        self._config = config

    def prepare(
        self,
        batch: Sequence[EntityUpdates],
        links: Sequence[ClusterEntry] = (),
        parcels: Sequence[ParcelUpdate] = (),
    ) -> EncodedBatch:
        entities: list[dict[str, Any]] = []
        # An event's update goes to each of its entities (three or four): its row is sent once, and
        # each entity names it by number (from 1, as Lua counts).
        rows: list[list[object]] = []
        numbers: dict[int, int] = {}
        for group in batch:
            named = []
            for update in group.updates:
                number = numbers.get(id(update))
                if number is None:
                    rows.append(_row(update))
                    number = numbers[id(update)] = len(rows)
                named.append(number)
            entities.append(_entity_json(group.entity, named))
        return EncodedBatch(
            {group.entity: number for number, group in enumerate(batch, 1)},
            orjson.Fragment(orjson.dumps(rows)),
            orjson.Fragment(orjson.dumps(entities)),
            orjson.Fragment(orjson.dumps([[link.update.event_time_ms, link.encode().decode()] for link in links])),
            parcel_rows(parcels),
        )

    def _request(self, encoded: EncodedBatch, rules: RuleSet, clock: ClockInput) -> tuple[list[str], bytes]:
        # Entities the previous call left due and this batch does not touch: judged with no updates.
        more = [e for e in clock.due if e not in encoded.entities]
        cfg = self._config
        payload = {
            "cfg": {
                "retention_ms": cfg.retention_s * 1000,
                "max_parcels": cfg.max_parcels_per_entity,
                "max_evidence": cfg.max_evidence,
                "ttl_ms": cfg.idle_ttl_s * 1000,
                "partitions": clock.partitions,
                "lateness_ms": clock.lateness_s * 1000,
                "due_limit": self.due_limit,
                "now_ms": clock.now_ms,
                "prefix": self._prefix,
                "parked_key_chars": PARKED_KEY_CHARS,
                "parked_ms": cfg.parked_life_s * 1000,
                "cluster_limit": self.cluster_limit,
                "reclaim_ms": cfg.reclaim_after_s * 1000,
            },
            "links": encoded.links,
            "rules": {
                kind: [
                    [r.id, r.window_s * 1000, r.threshold_kg, r.min_parcels, r.regrow_factor, r.severity, r.window_s]
                    for r in rules.for_entity(kind)
                ]
                # every judged type: the call also judges entities its reports made due, of any type
                for kind in sorted(rules.entity_types | {CLUSTER})
            },
            "rows": encoded.rows,
            "entities": encoded.entities_json,
            "parcels": encoded.parcels,
            "marks": encoded.marks,
            "pulls": encoded.pulls,
            "wide": encoded.wide,
            "held": [
                {"et": entity.entity_type, "key": entity.key, "u": [_row(u) for u in updates]}
                for entity, updates in encoded.held
            ],
            "more": [_entity_json(e, []) for e in more],
            # due entities of the batch: judged even when all their updates were parked
            "judge": [encoded.entities[e] for e in clock.due if e in encoded.entities],
            "reports": [
                [r.partition, "" if r.max_event_ms is None else str(r.max_event_ms), 1 if r.idle else 0]
                for r in clock.reports
            ],
        }
        return self._clock_keys, orjson.dumps(payload)

    async def apply(
        self,
        batch: Sequence[EntityUpdates],
        rules: RuleSet,
        clock: ClockInput,
        links: Sequence[ClusterEntry] = (),
        encoded: object = None,
        parcels: Sequence[ParcelUpdate] = (),
    ) -> BatchResult:
        request = encoded if isinstance(encoded, EncodedBatch) else self.prepare(batch, links, parcels)
        result, _ = await self.call(request, rules, clock)
        return result

    async def call(self, request: EncodedBatch, rules: RuleSet, clock: ClockInput) -> tuple[BatchResult, CallReply]:
        """One script call: :meth:`apply`'s result, and what a sharded store reads besides."""
        try:
            keys, args = self._request(request, rules, clock)
            reply = await self._apply(keys=keys, args=[args])
            self.round_trips += 1
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"window store update failed: {exc}") from exc
        decoded = orjson.loads(reply)
        stats = ApplyStats()
        for key, value in decoded["stats"].items():
            stats.counts[key] += int(value)
        pending = decoded["alerts"]
        alerts = {a.alert_id: a for a in map(alert_from_json, pending if isinstance(pending, list) else [])}
        check_until, late_before = (int(float(v)) for v in decoded["at"])
        due, forward, wide = decoded["due"], decoded["forward"], decoded["wide"]
        result = BatchResult(
            stats,
            sorted(alerts.values(), key=lambda a: (a.last_event_ms, a.alert_id)),
            Progress(check_until, late_before),
            tuple(EntityRef(*m.split(":", 1)) for m in (due if isinstance(due, list) else [])),
        )
        # cjson writes an empty list as an empty object
        return result, CallReply(
            [(member, int(i)) for member, i in forward] if isinstance(forward, list) else [],
            wide if isinstance(wide, list) else [],
        )

    async def acknowledge(self, alerts: Sequence[RaisedAlert]) -> None:
        if not alerts:
            return
        by_entity: dict[EntityRef, list[str]] = defaultdict(list)
        for alert in alerts:
            by_entity[alert.entity].append(alert.alert_id)
        keys: list[str] = [self._claims_key]
        args: list[str | int] = []
        for entity, ids in by_entity.items():
            keys.append(entity_keys(self._prefix, entity)[0])
            args.extend([entity.tag, len(ids), *ids])
        try:
            await self._ack(keys=keys, args=args)
            self.round_trips += 1
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"alert acknowledgement failed: {exc}") from exc

    async def suppress(self, entity: EntityRef, rule_id: str, until_ms: int, now_ms: int) -> None:
        try:
            await self._suppress(keys=entity_keys(self._prefix, entity), args=[rule_id, until_ms, now_ms])
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"suppression failed: {exc}") from exc
