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

from detectors.events import INT_MAX, Address, Country, Dimensions, Item, ParcelEvent, Party, Text64

_Weight = Annotated[int, msgspec.Meta(gt=0, le=100000)] | Annotated[float, msgspec.Meta(gt=0, le=100000)]


class _Event(msgspec.Struct):
    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    parcel_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    event_type: Literal["declared", "picked_up", "scanned", "exported", "delivered", "cancelled"]
    # The contract's oneOf [date-time string, integer >= 0]; the time itself is parsed by the caller.
    event_time: Annotated[int, msgspec.Meta(ge=0, le=INT_MAX)] | str
    courier: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    channel: Literal["express", "ltl", "cross_border_ecommerce", "postal"]
    sender: Party  # decoded as they are kept (detectors/events.py)
    recipient: Party
    items: Annotated[tuple[Item, ...], msgspec.Meta(min_length=1, max_length=200)]
    schema_version: Literal[1] | msgspec.UnsetType = msgspec.UNSET  # absent or 1; null is not the const
    platform: Text64 | None = None
    order_id: Text64 | None = None
    pickup_point: Text64 | None = None
    destination_country: Country | None = None
    transit_countries: tuple[Country, ...] = ()
    declared_weight_kg: _Weight | None = None
    measured_weight_kg: _Weight | None = None
    dimensions_cm: Dimensions | None = None


_DECODER = msgspec.json.Decoder(_Event)

# msgspec's refusal: a malformed document or a value out of the types above.
Refused = msgspec.DecodeError


_NO_FIELD_SET = Address()


def _check_address(p: Party) -> Party:
    if p.address == _NO_FIELD_SET:
        # {} is no address to the schema's way, {"city": null} one with no field set: let it judge.
        raise Refused("an address with no field set")
    return p


def decode(raw: bytes, event_time_ms: Callable[[int | str], int]) -> ParcelEvent:
    """The event of a record these types accept; raises :data:`Refused` otherwise.

    ``event_time_ms`` turns the record's ``event_time`` into epoch milliseconds, or raises.
    """
    e = _DECODER.decode(raw)
    # Positional, in ParcelEvent's field order: keywords took five times as long (0.73 against
    # 0.15 us, timeit here), a sixth of this function. tests/detectors/test_wire.py holds the event to
    # the schema's way, which builds it by keyword, with every field set apart from the others.
    return ParcelEvent(
        e.event_id,
        e.parcel_id,
        e.event_type,
        event_time_ms(e.event_time),
        e.courier,
        e.channel,
        _check_address(e.sender),
        _check_address(e.recipient),
        e.items,
        e.platform,
        e.order_id,
        e.pickup_point,
        e.destination_country,
        e.transit_countries,
        e.declared_weight_kg,
        e.measured_weight_kg,
        e.dimensions_cm,
    )
