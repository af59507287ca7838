"""Frozen records the core works on: the canonical parcel event after validation.

Framework records (Faust events, Kafka messages) stop at the boundary; the core only ever
sees these frozen records.

The records are frozen msgspec structs, not dataclasses. The worker's decoder
(:mod:`detectors.wire`) builds ``Address``, ``Party``, ``Item`` and ``Dimensions`` straight from
the record, where copying each into a frozen dataclass cost more than decoding the record
(benchmarks/core_stages.py times the whole decoding); they hash faster as cache keys
(:mod:`detectors.entities`); and a struct of ``ParcelEvent``'s seventeen fields is built in a
third of the time a frozen dataclass takes (timeit, on this machine). Their fields carry
the contract's bounds, which msgspec checks when it decodes a record and never when a record is
built in code.

They are also left out of the garbage collector's passes (``gc=False``): they hold only strings,
numbers, tuples and one another, so no cycle can run through them, and a batch builds several
per event. Tracked, they filled the collector's young generation and were passed over again
when it was collected; the other per-event structs (entities, scores, window updates) do the same.
"""

from __future__ import annotations

from string import ascii_uppercase
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

EventType = Literal["declared", "picked_up", "scanned", "exported", "delivered", "cancelled"]
Channel = Literal["express", "ltl", "cross_border_ecommerce", "postal"]


# The contract's bounds (``detectors/contracts/parcel-event.schema.json``), for msgspec's decoder.
if TYPE_CHECKING:
    Country = str
else:
    # The pattern ^[A-Z]{2}$ as the 676 codes it admits: msgspec checks a literal with a look-up in
    # C, and a pattern by calling Python's ``re``. An event has two to four country codes: decoding
    # 100,000 events of benchmarks/core.py's stream took 2.0 us an event with the literal, 2.9 with
    # the pattern (ad hoc, alternated runs).
    Country = Literal[tuple(first + second for first in ascii_uppercase for second in ascii_uppercase)]
Text16 = Annotated[str, msgspec.Meta(max_length=16)]
Text32 = Annotated[str, msgspec.Meta(max_length=32)]
Text64 = Annotated[str, msgspec.Meta(max_length=64)]
Text128 = Annotated[str, msgspec.Meta(max_length=128)]
Text256 = Annotated[str, msgspec.Meta(max_length=256)]


class Address(msgspec.Struct, frozen=True, gc=False):
    country: Country | None = None
    province: Text64 | None = None
    city: Text64 | None = None
    district: Text64 | None = None
    street: Text256 | None = None
    postcode: Text16 | None = None


class Party(msgspec.Struct, frozen=True, gc=False):
    name: Text128 | None = None
    phone: Text32 | None = None
    account_id: Text64 | None = None
    company: Text128 | None = None
    address: Address | None = None


# orjson reads an integer beyond 64 bits as a float; msgspec would keep it an int. Such integers
# are refused by the decoder and judged the schema's way (detectors/wire.py).
INT_MAX = 2**63 - 1
# Numbers that the contract lets be integers stay integers where the schema's way keeps them so.
Positive = Annotated[int, msgspec.Meta(gt=0, le=INT_MAX)] | Annotated[float, msgspec.Meta(gt=0)]
NonNegative = Annotated[int, msgspec.Meta(ge=0, le=INT_MAX)] | Annotated[float, msgspec.Meta(ge=0)]
# A float field takes a JSON integer as a float, as the schema's way converts it.
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class Item(msgspec.Struct, frozen=True, gc=False):
    description: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    quantity: PositiveFloat
    hs_code: Annotated[str, msgspec.Meta(pattern="^[0-9]{4,10}$")] | None = None
    unit: Text16 | None = None
    unit_volume_ml: Positive | None = None
    value: NonNegative | None = None
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")] | None = None


class Dimensions(msgspec.Struct, frozen=True, gc=False):
    l: PositiveFloat  # noqa: E741 - the contract's field name
    w: PositiveFloat
    h: PositiveFloat

    @property
    def volume_cm3(self) -> float:
        return self.l * self.w * self.h


class ParcelEvent(msgspec.Struct, frozen=True, gc=False):
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
