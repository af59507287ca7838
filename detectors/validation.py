"""Turn a decoded record into a :class:`ParcelEvent`, or say precisely why it cannot be one."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import fastjsonschema
import jsonschema
import orjson

from detectors import contracts, wire
from detectors.errors import ConfigError, InvalidEvent
from detectors.events import Address, Channel, Dimensions, EventType, Item, ParcelEvent, Party

# Event times outside this range are typos or clock faults, not parcels (closed interval, UTC).
MIN_EVENT_TIME_MS = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp() * 1000)
MAX_EVENT_TIME_MS = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1000)
MAX_RECORD_BYTES = 1_000_000

_VALIDATOR = jsonschema.Draft202012Validator(contracts.load("parcel-event"))


def _compiled() -> Callable[[Any], Any]:
    """The contract compiled to Python by fastjsonschema: ~15x faster than jsonschema on valid records.

    fastjsonschema knows drafts up to 7; the contract uses nothing newer but the ``$defs`` name,
    which its JSON-pointer ``$ref`` resolves all the same, and a relative ``$id`` it would try to
    fetch. The compiled copy drops the ``$id`` and says draft 7; the published contract is unchanged.
    Formats are not checked, as jsonschema does not check them either (times are parsed below).
    """
    schema = copy.deepcopy(contracts.load("parcel-event"))
    schema.pop("$id", None)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    # ``oneOf`` [string, integer >= 0] says the same as one type list with a minimum (a minimum binds
    # numbers only), but fastjsonschema tries every branch and builds an exception for each that
    # fails: one per event, a tenth of the worker's time (py-spy, benchmarks/throughput.py's stream).
    if schema["properties"]["event_time"] != {
        "oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer", "minimum": 0}]
    }:
        raise ConfigError("the contract's event_time changed: update the compiled copy's rewrite in validation.py")
    schema["properties"]["event_time"] = {"type": ["string", "integer"], "minimum": 0}
    validate: Callable[[Any], Any] = fastjsonschema.compile(schema, use_formats=False)
    return validate


_FAST = _compiled()


def decode(raw: bytes) -> dict[str, Any]:
    """Decode one JSON record; NaN, Infinity and non-objects are refused."""
    if len(raw) > MAX_RECORD_BYTES:
        raise InvalidEvent("too_large", f"record is {len(raw)} bytes, the limit is {MAX_RECORD_BYTES}")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("not_json", str(exc)) from None
    if not isinstance(value, dict):
        raise InvalidEvent("not_object", f"expected a JSON object, got {type(value).__name__}")
    return value


def parse_event_time(value: object) -> int:
    """RFC 3339 with an explicit offset, or Unix epoch milliseconds, to epoch milliseconds."""
    if isinstance(value, bool):
        raise InvalidEvent("bad_time", "event_time is a boolean")
    if isinstance(value, int):
        millis = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise InvalidEvent("bad_time", f"event_time {value[:64]!r} is not RFC 3339") from None
        if parsed.tzinfo is None:
            raise InvalidEvent("bad_time", f"event_time {value[:64]!r} has no UTC offset")
        millis = int(parsed.timestamp() * 1000)
    else:
        raise InvalidEvent("bad_time", f"event_time has type {type(value).__name__}")
    if not MIN_EVENT_TIME_MS <= millis <= MAX_EVENT_TIME_MS:
        raise InvalidEvent("bad_time", f"event_time {millis} ms is outside 2000-01-01..2100-01-01")
    return millis


def _schema_error(record: Mapping[str, Any]) -> str | None:
    try:
        _FAST(record)
        return None
    except fastjsonschema.JsonSchemaValueException:
        pass  # rare: jsonschema says precisely what is wrong, and has the last word
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(record))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(record)"
    return f"{where}: {error.message[:300]}"


def _address(value: Mapping[str, Any] | None) -> Address | None:
    if not value:
        return None
    return Address(
        country=value.get("country"),
        province=value.get("province"),
        city=value.get("city"),
        district=value.get("district"),
        street=value.get("street"),
        postcode=value.get("postcode"),
    )


def _party(value: Mapping[str, Any]) -> Party:
    return Party(
        name=value.get("name"),
        phone=value.get("phone"),
        account_id=value.get("account_id"),
        company=value.get("company"),
        address=_address(value.get("address")),
    )


def _item(value: Mapping[str, Any]) -> Item:
    return Item(
        description=value["description"],
        quantity=float(value["quantity"]),
        hs_code=value.get("hs_code"),
        unit=value.get("unit"),
        unit_volume_ml=value.get("unit_volume_ml"),
        value=value.get("value"),
        currency=value.get("currency"),
    )


def to_event(record: Mapping[str, Any]) -> ParcelEvent:
    """Validate ``record`` against the parcel-event contract and build the frozen event."""
    problem = _schema_error(record)
    if problem is not None:
        raise InvalidEvent("schema", problem)
    dims = record.get("dimensions_cm")
    return ParcelEvent(
        event_id=record["event_id"],
        parcel_id=record["parcel_id"],
        event_type=cast(EventType, record["event_type"]),
        event_time_ms=parse_event_time(record["event_time"]),
        courier=record["courier"],
        channel=cast(Channel, record["channel"]),
        sender=_party(record["sender"]),
        recipient=_party(record["recipient"]),
        items=tuple(_item(item) for item in record["items"]),
        platform=record.get("platform"),
        order_id=record.get("order_id"),
        pickup_point=record.get("pickup_point"),
        destination_country=record.get("destination_country"),
        transit_countries=tuple(record.get("transit_countries") or ()),
        declared_weight_kg=record.get("declared_weight_kg"),
        measured_weight_kg=record.get("measured_weight_kg"),
        dimensions=Dimensions(float(dims["l"]), float(dims["w"]), float(dims["h"])) if dims else None,
    )


def parse(raw: bytes) -> ParcelEvent:
    """Bytes off the wire to a validated event; raises :class:`InvalidEvent` with a reason.

    A record goes through :mod:`detectors.wire` in one pass; what that refuses is decoded and
    checked against the contract here, which accepts what the wire types are stricter about and
    names the problem of the rest.
    """
    if len(raw) <= MAX_RECORD_BYTES:
        try:
            return wire.decode(raw, parse_event_time)
        except wire.Refused:
            pass
    return to_event(decode(raw))
