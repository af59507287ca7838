from __future__ import annotations

import contextlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.entities import ENTITY_TYPES, Pseudonymizer, clear_identities, normalise_building, normalise_phone
from detectors.events import Address, Item, ParcelEvent, Party


@pytest.mark.parametrize(
    "street",
    [
        "科技园路12号3栋1单元502室",
        "科技园路12号3幢502",
        "科技园路12号3号楼2单元",
        "科技园路12号 3-1-502",
        "科技园路１２号３棟",
        "科技园路12号3-502",
    ],
)
def test_every_way_of_writing_one_building_gives_one_key(street: str) -> None:
    address = Address(country="CN", province="广东省", city="深圳市", street=street)
    assert normalise_building(address) == "cn|广东省|深圳市|科技园路12号3栋"


def test_phones_are_normalised_and_short_numbers_ignored() -> None:
    assert normalise_phone("+86 138-0013-8000") == normalise_phone("008613800138000") == "13800138000"
    assert normalise_phone("110") is None and normalise_phone(None) is None


def test_pseudonyms_are_keyed_stable_and_never_clear() -> None:
    event = ParcelEvent(
        event_id="e",
        parcel_id="p",
        event_type="declared",
        event_time_ms=1,
        courier="SF",
        channel="express",
        sender=Party(phone="13800138000", account_id="acct1", address=Address(street="人民路1号2栋")),
        recipient=Party(phone="+84901234567"),
        items=(Item("x", 1),),
        pickup_point="SF-1",
    )
    one, other = Pseudonymizer(b"a" * 32), Pseudonymizer(b"b" * 32)
    refs = one.entities(event)
    assert {r.entity_type for r, _ in refs} == set(clear_identities(event))
    assert all("13800138000" not in r.key and len(r.key) == 24 for r, _ in refs)
    assert [r.key for r, _ in one.entities(event)] == [r.key for r, _ in refs]
    assert [r.key for r, _ in other.entities(event)] != [r.key for r, _ in refs]
    assert "a" * 32 not in repr(one)
    with pytest.raises(ValueError):
        Pseudonymizer(b"short")


@settings(max_examples=300)
@given(secret=st.binary(min_size=16, max_size=200), kind=st.sampled_from(ENTITY_TYPES), clear=st.text(max_size=80))
def test_pseudonyms_are_hmac_sha256_of_type_and_identifier(secret: bytes, kind: str, clear: str) -> None:
    """The pseudonymizer's own HMAC (pads absorbed once) keys exactly as the standard library's,
    for secrets shorter and longer than SHA-256's block."""
    expected = hmac.digest(secret, f"{kind}\x1f{clear}".encode(), "sha256").hex()[:24]
    assert Pseudonymizer(secret).key(kind, clear) == expected


def test_cached_entities_are_the_clear_identities_keyed_in_order() -> None:
    """The pseudonymizer caches each side of an event whole; what it names must stay what
    ``clear_identities`` names, for every event of the replay stream, seen once and seen again."""
    from pathlib import Path

    from detectors.errors import InvalidEvent
    from detectors.validation import parse

    events = []
    for line in (Path(__file__).parents[1] / "data" / "replay_stream.jsonl").read_bytes().splitlines()[:3000]:
        with contextlib.suppress(InvalidEvent):  # the stream holds bad records on purpose
            events.append(parse(line))
    pseudonymizer = Pseudonymizer(b"a" * 32)
    for event in events + events:
        expected = list(clear_identities(event).items())
        found = pseudonymizer.entities(event)
        assert [(ref.entity_type, clear) for ref, clear in found] == expected
        assert [ref.key for ref, _ in found] == [pseudonymizer.key(kind, clear) for kind, clear in expected]
    assert any(event.pickup_point for event in events)


def test_one_room_written_four_ways_is_one_node_and_a_building_alone_is_none() -> None:
    from detectors.entities import normalise_room

    rooms = {
        normalise_room(Address(country="CN", city="深圳市", street=street))
        for street in (
            "科技园路12号3栋1单元502室",
            "科技园路12号3幢502",
            "科技园路12号3号楼1单元502",
            "科技园路12号 3-1-502",
        )
    }
    assert len(rooms) == 1 and next(iter(rooms)).endswith("3栋|502")
    assert normalise_room(Address(country="CN", city="深圳市", street="科技园路12号3栋")) is None


def test_a_name_links_only_within_its_building() -> None:
    from detectors.entities import normalise_person

    home = Address(country="CN", city="深圳市", street="科技园路12号3栋1单元502室")
    assert normalise_person("王 伟", home) == normalise_person(
        "王伟", Address(country="CN", city="深圳市", street="科技园路12号3幢9")
    )
    assert normalise_person("王伟", home) != normalise_person(
        "王伟", Address(country="CN", city="深圳市", street="人民路1号2栋")
    )
    assert normalise_person("王伟", None) is None and normalise_person("", home) is None
