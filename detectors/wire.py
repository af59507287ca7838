"""The parcel-event contract as msgspec types: one pass decodes a record, checks it and builds it.

The worker's path for a valid record, in place of decoding with orjson, checking the dicts with
the compiled JSON Schema and building the frozen event from them (benchmarks/core_stages.py
measures both ways side by side). The JSON Schema stays the contract and the last word:
whatever these types refuse goes the schema's way (:func:`detectors.validation.parse`), which
accepts what they are stricter about (``1.0`` for ``schema_version``, say) and names the problem
of what it refuses. So these types may refuse more than the schema, never less, and what they
accept must build the very event the schema's way builds: tests/detectors/test_wire.py holds them
to that, on generated and mutated records.

Each constraint below is the contract's (``detectors/contracts/parcel-event.schema.json``).
Numbers that the contract lets be integers stay integers (``int | float``), as orjson leaves them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import msgspec

from detectors.events import Address, Dimensions, Item, ParcelEvent, Party

# orjson reads an integer beyond 64 bits as a float; msgspec would keep it an int. Such integers
# are refused here and judged the schema's way.
_INT_MAX = 2**63 - 1

_Country = Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}$")]
_Currency = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
_HsCode = Annotated[str, msgspec.Meta(pattern="^[0-9]{4,10}$")]
_Text16 = Annotated[str, msgspec.Meta(max_length=16)]
_Text32 = Annotated[str, msgspec.Meta(max_length=32)]
_Text64 = Annotated[str, msgspec.Meta(max_length=64)]
_Text128 = Annotated[str, msgspec.Meta(max_length=128)]
_Text256 = Annotated[str, msgspec.Meta(max_length=256)]
# Numbers stay ints when written as ints, as orjson leaves them.
_Positive = Annotated[int, msgspec.Meta(gt=0, le=_INT_MAX)] | Annotated[float, msgspec.Meta(gt=0)]
_NonNegative = Annotated[int, msgspec.Meta(ge=0, le=_INT_MAX)] | Annotated[float, msgspec.Meta(ge=0)]
_Weight = Annotated[int, msgspec.Meta(gt=0, le=100000)] | Annotated[float, msgspec.Meta(gt=0, le=100000)]


class _Address(msgspec.Struct):
    country: _Country | None = None
    province: _Text64 | None = None
    city: _Text64 | None = None
    district: _Text64 | None = None
    street: _Text256 | None = None
    postcode: _Text16 | None = None


class _Party(msgspec.Struct):
    name: _Text128 | None = None
    phone: _Text32 | None = None
    account_id: _Text64 | None = None
    company: _Text128 | None = None
    address: _Address | None = None


class _Item(msgspec.Struct):
    description: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    quantity: _Positive
    hs_code: _HsCode | None = None
    unit: _Text16 | None = None
    unit_volume_ml: _Positive | None = None
    value: _NonNegative | None = None
    currency: _Currency | None = None


class _Dimensions(msgspec.Struct):
    l: _Positive  # noqa: E741 - the contract's field name
    w: _Positive
    h: _Positive


class _Event(msgspec.Struct):
    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    parcel_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    event_type: Literal["declared", "picked_up", "scanned", "exported", "delivered", "cancelled"]
    # The contract's oneOf [date-time string, integer >= 0]; the time itself is parsed by the caller.
    event_time: Annotated[int, msgspec.Meta(ge=0, le=_INT_MAX)] | str
    courier: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    channel: Literal["express", "ltl", "cross_border_ecommerce", "postal"]
    sender: _Party
    recipient: _Party
    items: Annotated[list[_Item], msgspec.Meta(min_length=1, max_length=200)]
    schema_version: Literal[1] | msgspec.UnsetType = msgspec.UNSET  # absent or 1; null is not the const
    platform: _Text64 | None = None
    order_id: _Text64 | None = None
    pickup_point: _Text64 | None = None
    destination_country: _Country | None = None
    transit_countries: list[_Country] = []
    declared_weight_kg: _Weight | None = None
    measured_weight_kg: _Weight | None = None
    dimensions_cm: _Dimensions | None = None


_DECODER = msgspec.json.Decoder(_Event)

# msgspec's refusal: a malformed document or a value out of the types above.
Refused = msgspec.DecodeError


_NO_FIELD_SET = (None,) * 6


def _address(a: _Address | None) -> Address | None:
    if a is None:
        return None
    fields = (a.country, a.province, a.city, a.district, a.street, a.postcode)
    if fields == _NO_FIELD_SET:
        # {} is no address to the schema's way, {"city": null} one with no field set: let it judge.
        raise Refused("an address with no field set")
    return Address(*fields)


def _item(i: _Item) -> Item:
    return Item(i.description, float(i.quantity), i.hs_code, i.unit, i.unit_volume_ml, i.value, i.currency)


def _party(p: _Party) -> Party:
    return Party(p.name, p.phone, p.account_id, p.company, _address(p.address))


def decode(raw: bytes, event_time_ms: Callable[[int | str], int]) -> ParcelEvent:
    """The event of a record these types accept; raises :data:`Refused` otherwise.

    ``event_time_ms`` turns the record's ``event_time`` into epoch milliseconds, or raises.
    """
    e = _DECODER.decode(raw)
    d = e.dimensions_cm
    return ParcelEvent(
        event_id=e.event_id,
        parcel_id=e.parcel_id,
        event_type=e.event_type,
        event_time_ms=event_time_ms(e.event_time),
        courier=e.courier,
        channel=e.channel,
        sender=_party(e.sender),
        recipient=_party(e.recipient),
        items=tuple(_item(i) for i in e.items),
        platform=e.platform,
        order_id=e.order_id,
        pickup_point=e.pickup_point,
        destination_country=e.destination_country,
        transit_countries=tuple(e.transit_countries),
        declared_weight_kg=e.declared_weight_kg,
        measured_weight_kg=e.measured_weight_kg,
        dimensions=Dimensions(float(d.l), float(d.w), float(d.h)) if d is not None else None,
    )
