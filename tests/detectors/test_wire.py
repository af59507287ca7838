"""The one-pass wire types accept no record the contract refuses, and build what the schema's way builds."""

from __future__ import annotations

import gc
import json
from typing import Any

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from detectors import validation, wire
from detectors.errors import InvalidEvent
from detectors.events import ParcelEvent
from tests.detectors.test_validation import GOOD as VALIDATION_GOOD

ABSENT = object()


def schema_way(raw: bytes) -> object:
    """The event, or the refusal, of decoding with orjson and checking against the JSON Schema."""
    try:
        return validation.to_event(validation.decode(raw))
    except InvalidEvent as exc:
        return (exc.reason, exc.detail)


def parse_way(raw: bytes) -> object:
    """What the worker does: :func:`detectors.validation.parse`."""
    try:
        return validation.parse(raw)
    except InvalidEvent as exc:
        return (exc.reason, exc.detail)


def wire_way(raw: bytes) -> object:
    try:
        return wire.decode(raw, validation.parse_event_time)
    except wire.Refused:
        return "refused"
    except InvalidEvent as exc:
        return (exc.reason, exc.detail)


def mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` 39 times in 40: a record of some fifty values then has a fair chance of being valid."""
    return st.integers(0, 39).flatmap(lambda n: valid if n else other)


# Values near each constraint's edges, of the right type and of wrong ones.
WRONG = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.just([]), st.just({}), st.just("x"))
EDGE_NUMBERS = st.one_of(
    st.sampled_from([0, 0.0, -1, 100000, 100000.0, 100000.5, 100001, 5e-324, 1e300, 10**20]),
    st.floats(-1, 2e5, allow_nan=False),
    WRONG,
)
NUMBERS = mostly(st.one_of(st.integers(1, 1000), st.floats(0.001, 1000)), EDGE_NUMBERS)


def text(max_length: int) -> st.SearchStrategy[Any]:
    edges = st.sampled_from(["", "x" * max_length, "x" * (max_length + 1), "é" * max_length, "€" * (max_length + 1)])
    return mostly(st.text(min_size=1, max_size=8), st.one_of(edges, st.text(max_size=max_length + 2), WRONG))


def pattern(valid: str) -> st.SearchStrategy[Any]:
    edges = st.sampled_from(["CN", "CNY", "cn", "CN\n", "1234", ""])
    return mostly(st.from_regex(valid, fullmatch=True), st.one_of(edges, WRONG))


def field(values: st.SearchStrategy[Any], nullable: bool = True) -> st.SearchStrategy[Any]:
    """Absent, null (mostly only where the contract allows it) or a value."""
    null = st.none() if nullable else mostly(st.just(ABSENT), st.none())
    return st.one_of(st.just(ABSENT), null, values, values)


def obj(
    required: tuple[str, ...] = (), not_null: tuple[str, ...] = (), **fields: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    def build(values: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in values.items() if v is not ABSENT} | extra

    extra = st.dictionaries(st.sampled_from(["extra", "note"]), st.integers(), max_size=1)
    drawn = {
        k: mostly(v, st.just(ABSENT)) if k in required else field(v, nullable=k not in not_null)
        for k, v in fields.items()
    }
    return st.builds(build, st.fixed_dictionaries(drawn), extra)


ADDRESS = obj(
    country=pattern(r"^[A-Z]{2}$"),
    province=text(64),
    city=text(64),
    district=text(64),
    street=text(256),
    postcode=text(16),
)
PARTY = obj(
    name=text(128),
    phone=text(32),
    account_id=text(64),
    company=text(128),
    address=mostly(ADDRESS, WRONG),
)
ITEM = obj(
    ("description", "quantity"),
    description=text(512),
    quantity=NUMBERS,
    hs_code=pattern(r"^[0-9]{4,10}$"),
    unit=text(16),
    unit_volume_ml=NUMBERS,
    value=NUMBERS,
    currency=pattern(r"^[A-Z]{3}$"),
)
DIMENSIONS = obj(("l", "w", "h"), l=NUMBERS, w=NUMBERS, h=NUMBERS)
REQUIRED = ("event_id", "parcel_id", "event_type", "event_time", "courier", "channel", "sender", "recipient", "items")
RECORD = obj(
    REQUIRED,
    ("schema_version", "transit_countries"),
    schema_version=mostly(st.just(1), st.one_of(st.sampled_from([1.0, 2, True, "1"]), WRONG)),
    event_id=text(128),
    parcel_id=text(64),
    event_type=mostly(st.sampled_from(["declared", "cancelled"]), st.one_of(st.sampled_from(["teleported"]), WRONG)),
    event_time=mostly(
        st.one_of(
            st.sampled_from(["2026-11-01T09:30:00+08:00", "2026-11-01T09:30:00Z"]),
            st.integers(946_684_800_000, 4_102_444_800_000),
        ),
        st.sampled_from(["2026-11-01T09:30:00", "soon", -1, 0, 1_793_496_600_000.0, 10**20, True, None, []]),
    ),
    courier=text(32),
    channel=mostly(st.sampled_from(["express", "postal"]), st.one_of(st.just("air"), WRONG)),
    platform=text(64),
    order_id=text(64),
    pickup_point=text(64),
    sender=mostly(PARTY, WRONG),
    recipient=mostly(PARTY, WRONG),
    destination_country=pattern(r"^[A-Z]{2}$"),
    transit_countries=mostly(st.lists(pattern(r"^[A-Z]{2}$"), max_size=3), WRONG),
    items=mostly(st.lists(mostly(ITEM, WRONG), min_size=1, max_size=3), st.one_of(st.just([]), WRONG)),
    declared_weight_kg=NUMBERS,
    measured_weight_kg=NUMBERS,
    dimensions_cm=mostly(DIMENSIONS, WRONG),
)

# test_validation's good record, with a value in every optional field the wire types build from.
GOOD = VALIDATION_GOOD | {
    "sender": {"phone": "13800138000", "address": {"city": "深圳市", "postcode": "518000"}},
    "recipient": {"name": "王", "address": {"country": "CN"}},
    "items": [{"description": "面霜 50ml", "quantity": 2, "unit_volume_ml": 50, "value": 12.5, "currency": "CNY"}],
    "declared_weight_kg": 1,
    "measured_weight_kg": 1.25,
    "dimensions_cm": {"l": 10, "w": 5.5, "h": 3},
    "transit_countries": ["HK"],
    "schema_version": 1,
    # every field set, each to its own value: the one pass builds the event by position
    "platform": "tmall",
    "order_id": "o-77",
    "pickup_point": "SF-0755",
    "destination_country": "US",
}


def dumps(value: object) -> bytes:
    """The stdlib's encoder: orjson refuses integers beyond 64 bits, which a producer may still send."""
    return json.dumps(value, ensure_ascii=False).encode()


def same(a: object, b: object) -> bool:
    """Equal, and equal in repr too: an int where the schema's way keeps a float (or back) differs."""
    return a == b and repr(a) == repr(b)


def test_a_good_record_takes_the_one_pass_way_and_builds_the_same_event() -> None:
    raw = orjson.dumps(GOOD)
    built = wire_way(raw)
    assert built != "refused"
    assert same(built, schema_way(raw))
    assert same(parse_way(raw), built)


def test_an_event_and_its_parts_stay_out_of_the_garbage_collectors_passes() -> None:
    # detectors/events.py: a batch builds several per event; none can be part of a cycle.
    built = wire_way(orjson.dumps(GOOD))
    assert isinstance(built, ParcelEvent)
    parts = [built, built.sender, built.recipient, built.sender.address, built.dimensions, *built.items]
    assert [type(p).__name__ for p in parts if p is None or gc.is_tracked(p)] == []


@settings(max_examples=600, deadline=None)
@given(RECORD)
def test_what_the_wire_types_accept_the_contract_accepts_as_the_same_event(record: dict[str, Any]) -> None:
    raw = dumps(record)
    by_wire = wire_way(raw)
    event("accepted by the wire types" if by_wire != "refused" else "refused by the wire types")
    if by_wire != "refused":
        assert same(by_wire, schema_way(raw))
    assert same(parse_way(raw), schema_way(raw))


@settings(max_examples=300, deadline=None)
@given(RECORD, st.sampled_from(["courier", "sender", "items", "schema_version", "event_time"]), WRONG)
def test_a_repeated_key_counts_as_its_last_value_both_ways(record: dict[str, Any], key: str, first: Any) -> None:
    body = dumps(record)
    raw = b"{" + dumps(key) + b":" + dumps(first) + (b"," if len(body) > 2 else b"") + body[1:]
    by_wire = wire_way(raw)
    if by_wire != "refused":
        assert same(by_wire, schema_way(raw))
    assert same(parse_way(raw), schema_way(raw))


def test_refusals_keep_the_schema_ways_reason() -> None:
    for raw in [
        orjson.dumps(GOOD | {"schema_version": None}),
        orjson.dumps(GOOD | {"courier": "x" * 33}),
        orjson.dumps(GOOD | {"sender": {"address": {}}}),
        orjson.dumps(GOOD | {"sender": {"address": {"city": None}}}),
        orjson.dumps(GOOD | {"event_time": "soon"}),
        b'{"event\\u005fid": 1}',
        b'{"quantity": 1e400}',
    ]:
        assert wire_way(raw) in ("refused", ("bad_time", "event_time 'soon' is not RFC 3339"))
        assert same(parse_way(raw), schema_way(raw)), raw


def at(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """GOOD with the value at ``path`` set (or removed, for ABSENT)."""
    record = json.loads(json.dumps(GOOD))
    parent = record
    for part in path[:-1]:
        parent = parent[part]
    if value is ABSENT:
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = value
    return record


NUMBER_EDGES = [0, 0.0, -0.0, 5e-324, 1, 99999.99, 100000, 100000.0, 100000.5, 100001, 2**63 - 1, 2**63, 10**20, 1e300]
EDGES: list[tuple[tuple[str | int, ...], Any]] = [
    *[
        (path, value)
        for path in [
            ("declared_weight_kg",),
            ("measured_weight_kg",),
            ("items", 0, "quantity"),
            ("items", 0, "unit_volume_ml"),
            ("items", 0, "value"),
            ("dimensions_cm", "l"),
            ("event_time",),
            ("schema_version",),
        ]
        for value in [*NUMBER_EDGES, -1, True, None, "1", ABSENT]
    ],
    *[
        (path, value)
        for path, limit in [
            (("event_id",), 128),
            (("parcel_id",), 64),
            (("courier",), 32),
            (("platform",), 64),
            (("sender", "name"), 128),
            (("sender", "phone"), 32),
            (("recipient", "account_id"), 64),
            (("sender", "address", "street"), 256),
            (("sender", "address", "postcode"), 16),
            (("items", 0, "description"), 512),
            (("items", 0, "unit"), 16),
        ]
        for value in ["", "é" * limit, "€" * (limit + 1), 1, None, ABSENT]
    ],
    *[
        (path, value)
        for path in [("destination_country",), ("recipient", "address", "country"), ("transit_countries", 0)]
        for value in ["CN", "cn", "CN\n", "CNY", "", None]
    ],
    *[(("items", 0, "currency"), value) for value in ["CNY", "CN", "CNY\n", None]],
    *[(("items", 0, "hs_code"), value) for value in ["2846", "284690", "28469012345", "284", "2846\n", None]],
    *[
        (("items",), value)
        for value in [[], [{"description": "x", "quantity": 1}] * 200, [{"description": "x", "quantity": 1}] * 201]
    ],
    *[(("sender", "address"), value) for value in [{}, {"city": None}, {"note": 1}, None, ABSENT, []]],
    *[(("dimensions_cm",), value) for value in [{}, {"l": 1, "w": 1}, None, ABSENT]],
    *[(("transit_countries",), value) for value in [[], None, ABSENT, "CN"]],
]


@pytest.mark.parametrize(("path", "value"), EDGES, ids=[f"{'.'.join(map(str, p))}={v!r:.20}" for p, v in EDGES])
def test_each_constraints_edges_go_the_schemas_way(path: tuple[str | int, ...], value: Any) -> None:
    raw = dumps(at(path, value))
    by_wire = wire_way(raw)
    if by_wire != "refused":
        assert same(by_wire, schema_way(raw))
    assert same(parse_way(raw), schema_way(raw))
