"""Every way a record can be wrong gets a precise reason (these become dead letters)."""

from __future__ import annotations

import json

import fastjsonschema
import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from detectors import validation
from detectors.errors import InvalidEvent
from detectors.validation import parse

GOOD = {
    "event_id": "e1",
    "parcel_id": "SF1",
    "event_type": "declared",
    "event_time": "2026-11-01T09:30:00+08:00",
    "courier": "SF",
    "channel": "express",
    "sender": {"phone": "13800138000"},
    "recipient": {},
    "items": [{"description": "面霜 50ml", "quantity": 2}],
    "declared_weight_kg": 1.5,
}


def with_(**changes: object) -> bytes:
    record = dict(GOOD)
    for key, value in changes.items():
        if value is ...:
            record.pop(key)
        else:
            record[key] = value
    return orjson.dumps(record)


def test_a_good_record_parses_to_epoch_milliseconds() -> None:
    event = parse(orjson.dumps(GOOD))
    assert event.event_time_ms == 1_793_496_600_000  # 2026-11-01T01:30:00Z
    assert event.parcel_key == "SF:SF1" and event.weight_kg == 1.5


@pytest.mark.parametrize(
    ("raw", "reason", "detail_part"),
    [
        (b"", "not_json", ""),
        (b'{"event_id": "e1", ', "not_json", ""),
        (b"\xff\xfe\x00garbage", "not_json", ""),
        (b"[1, 2]", "not_object", "list"),
        (b'"just a string"', "not_object", "str"),
        (b'{"declared_weight_kg": NaN}', "not_json", ""),
        (b"{" * 5000 + b"}" * 5000, "not_json", ""),
        (b'{"a": "' + b"x" * 1_000_001 + b'"}', "too_large", "bytes"),
        (with_(event_id=...), "schema", "event_id"),
        (with_(event_type="teleported"), "schema", "event_type"),
        (with_(items=[]), "schema", "items"),
        (with_(items=[{"description": "x", "quantity": -1}]), "schema", "items/0/quantity"),
        (with_(declared_weight_kg=-3), "schema", "declared_weight_kg"),
        (with_(declared_weight_kg=1e9), "schema", "declared_weight_kg"),
        (with_(declared_weight_kg="12"), "schema", "declared_weight_kg"),
        (with_(destination_country="Thailand"), "schema", "destination_country"),
        (with_(sender="13800138000"), "schema", "sender"),
        (with_(event_time="yesterday"), "bad_time", "RFC 3339"),
        (with_(event_time="2026-11-01T09:30:00"), "bad_time", "offset"),
        (with_(event_time=1), "bad_time", "outside"),
        (with_(event_time="2150-01-01T00:00:00Z"), "bad_time", "outside"),
        (with_(event_time=True), "schema", "event_time"),
        (with_(parcel_id="x" * 65), "schema", "parcel_id"),
    ],
)
def test_bad_records_are_refused_with_a_precise_reason(raw: bytes, reason: str, detail_part: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse(raw)
    assert caught.value.reason == reason
    assert detail_part in caught.value.detail


def test_extra_fields_are_allowed_by_the_contract() -> None:
    assert parse(with_(x_courier_internal={"zone": 7})).parcel_id == "SF1"


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=70),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
PATHS = [
    ("event_id",),
    ("parcel_id",),
    ("event_type",),
    ("event_time",),
    ("courier",),
    ("channel",),
    ("sender",),
    ("sender", "phone"),
    ("sender", "address"),
    ("recipient",),
    ("items",),
    ("items", 0),
    ("items", 0, "quantity"),
    ("items", 0, "hs_code"),
    ("items", 0, "unit_volume_ml"),
    ("declared_weight_kg",),
    ("measured_weight_kg",),
    ("dimensions_cm",),
    ("destination_country",),
    ("transit_countries",),
    ("schema_version",),
    ("platform",),
]


@given(st.lists(st.tuples(st.sampled_from(PATHS), st.one_of(st.just(...), JSON_VALUES)), min_size=1, max_size=4))
@settings(max_examples=500, deadline=None)
def test_the_compiled_validator_agrees_with_jsonschema(mutations: list[tuple[tuple[object, ...], object]]) -> None:
    """The fast path may only ever skip the reference validator when the reference would agree."""
    record = json.loads(json.dumps(GOOD | {"items": [{"description": "面霜 50ml", "quantity": 2}]}))
    for path, value in mutations:
        target = record
        for step in path[:-1]:
            if isinstance(target, dict) and isinstance(step, str) and isinstance(target.get(step), (dict, list)):
                target = target[step]
            elif isinstance(target, list) and isinstance(step, int) and step < len(target):
                target = target[step]
            else:
                break
        else:
            last = path[-1]
            if isinstance(target, dict) and isinstance(last, str):
                if value is ...:
                    target.pop(last, None)
                else:
                    target[last] = value
            elif isinstance(target, list) and isinstance(last, int) and last < len(target) and value is not ...:
                target[last] = value
    fast_ok = True
    try:
        validation._FAST(record)
    except fastjsonschema.JsonSchemaValueException:
        fast_ok = False
    event("valid" if fast_ok else "invalid")
    assert fast_ok == validation._VALIDATOR.is_valid(record), record
