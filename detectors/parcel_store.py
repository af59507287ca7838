"""What an analyst needs to see of each suspect parcel, kept beside the windows in Redis.

The window store keeps numbers (anchor, mass, weight, reasons); an alert page also shows the
declared goods, the courier, the declared and measured weights, the box's density, the
destination and which identifiers the parcel shares with others. Only parcels with suspect mass
are kept (one hash per parcel, a field per event type, expiring with the entities), written in
one pipelined round trip per batch. Identifiers are pseudonyms; their clear form is kept only
where the deployment allows clear labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from detectors.entities import EntityRef
from detectors.events import ParcelEvent
from detectors.scoring import ParcelScore

# Identifiers shown on the evidence graph: who shares which phone, building, pickup point, recipient.
SHOWN_TYPES = ("sender_phone", "sender_account", "sender_address", "pickup_point", "recipient", "recipient_address")


def parcel_detail(
    event: ParcelEvent, score: ParcelScore, entities: Sequence[tuple[EntityRef, str]], clear: bool
) -> dict[str, Any]:
    volume = event.dimensions.volume_cm3 if event.dimensions is not None else None
    weight = event.weight_kg
    return {
        "parcel_id": event.parcel_key,
        "event_type": event.event_type,
        "event_time_ms": event.event_time_ms,
        "courier": event.courier,
        "channel": event.channel,
        "goods": "; ".join(
            f"{item.description} x{item.quantity:g}{' ' + item.unit if item.unit else ''}" for item in event.items
        ),
        "declared_weight_kg": event.declared_weight_kg,
        "measured_weight_kg": event.measured_weight_kg,
        "density_g_cm3": round(weight * 1000 / volume, 3) if weight and volume else None,
        "destination": event.destination_country
        or (event.recipient.address.country if event.recipient.address is not None else None),
        "suspect_mass_kg": score.suspect_mass_kg,
        "reasons": list(score.reasons),
        "identifiers": [
            [ref.entity_type, ref.key, label if clear else None]
            for ref, label in entities
            if ref.entity_type in SHOWN_TYPES
        ],
    }


class RedisParcelStore:
    def __init__(self, client: Any, prefix: str = "pw", ttl_s: int = 180 * 86400) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_s = ttl_s

    def _key(self, parcel_id: str) -> str:
        return f"{self._prefix}:parcel:{parcel_id}"

    async def save(self, details: Sequence[dict[str, Any]]) -> None:
        if not details:
            return
        pipe = self._client.pipeline(transaction=False)
        for detail in details:
            key = self._key(detail["parcel_id"])
            pipe.hset(key, detail["event_type"], orjson.dumps(detail))
            pipe.expire(key, self._ttl_s)
        await pipe.execute()

    async def get_many(self, parcel_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Per parcel, its events' details merged: the scale reading's weight beside the declared one."""
        if not parcel_ids:
            return {}
        pipe = self._client.pipeline(transaction=False)
        for parcel_id in parcel_ids:
            pipe.hgetall(self._key(parcel_id))
        out: dict[str, dict[str, Any]] = {}
        for parcel_id, fields in zip(parcel_ids, await pipe.execute(), strict=True):
            events = sorted((orjson.loads(raw) for raw in fields.values()), key=lambda d: d["event_time_ms"])
            if not events:
                continue
            merged: dict[str, Any] = {}
            for detail in events:
                merged.update({k: v for k, v in detail.items() if v is not None})
            merged["event_time_ms"] = events[0]["event_time_ms"]
            out[parcel_id] = merged
        return out
