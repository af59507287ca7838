"""Frozen records the core works on: the canonical parcel event after validation.

Framework records (Faust events, Kafka messages) stop at the boundary; the core only ever
sees these slotted dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EventType = Literal["declared", "picked_up", "scanned", "exported", "delivered", "cancelled"]
Channel = Literal["express", "ltl", "cross_border_ecommerce", "postal"]


@dataclass(frozen=True, slots=True)
class Address:
    country: str | None = None
    province: str | None = None
    city: str | None = None
    district: str | None = None
    street: str | None = None
    postcode: str | None = None


@dataclass(frozen=True, slots=True)
class Party:
    name: str | None = None
    phone: str | None = None
    account_id: str | None = None
    company: str | None = None
    address: Address | None = None


@dataclass(frozen=True, slots=True)
class Item:
    description: str
    quantity: float
    hs_code: str | None = None
    unit: str | None = None
    unit_volume_ml: float | None = None
    value: float | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class Dimensions:
    l: float  # noqa: E741 - the contract's field name
    w: float
    h: float

    @property
    def volume_cm3(self) -> float:
        return self.l * self.w * self.h


@dataclass(frozen=True, slots=True)
class ParcelEvent:
    event_id: str
    parcel_id: str
    event_type: EventType
    event_time_ms: int
    courier: str
    channel: Channel
    sender: Party
    recipient: Party
    items: tuple[Item, ...]
    platform: str | None = None
    order_id: str | None = None
    pickup_point: str | None = None
    destination_country: str | None = None
    transit_countries: tuple[str, ...] = ()
    declared_weight_kg: float | None = None
    measured_weight_kg: float | None = None
    dimensions: Dimensions | None = None

    @property
    def parcel_key(self) -> str:
        """Waybill numbers are unique per courier only, so the courier is part of the key."""
        return f"{self.courier}:{self.parcel_id}"

    @property
    def weight_kg(self) -> float | None:
        """Best-known weight carried by this event: a scale reading beats the declaration."""
        if self.measured_weight_kg is not None:
            return self.measured_weight_kg
        return self.declared_weight_kg
