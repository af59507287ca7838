"""Which entities a parcel event belongs to, normalised and pseudonymised.

Identifiers are personal data: outside this module they travel only as keyed pseudonyms
(HMAC-SHA256 with the deployment's secret). The clear form never reaches a Redis key.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Final

import msgspec

from detectors.events import Address, ParcelEvent
from detectors.text import fold, squeeze, squeeze_folded

ENTITY_TYPES: Final = (
    "sender_phone",
    "sender_account",
    "sender_address",
    "recipient",
    "recipient_address",
    "pickup_point",
    "cluster",  # identities joined by shared phones, accounts and rooms (detectors/clusters.py)
)

# Identifiers strong enough to join two identities into one cluster: a building is not (hundreds
# of households), a room is, and so is a name within one building; a name alone is not (common
# names repeat across a country).
NODE_TYPES: Final = ("sender_phone", "sender_account", "sender_room", "sender_person")

_DIGITS = re.compile(r"\d+")
# Building markers written differently by different clerks; all become 栋.
_BUILDING_MARK = re.compile(r"(号楼|號樓|幢|棟|栋|座|楼(?=\d*单元)|号院(?=\d))")
# "12-3-502" or "12-502" at the end of a street: building-unit-room written with dashes.
_DASHED_UNIT = re.compile(r"(\d+)\s*-\s*(\d+)(?:\s*-\s*(\d+))?\s*$")


class EntityRef(msgspec.Struct, frozen=True, gc=False):
    """One entity as the store sees it: its type and keyed pseudonym (never the clear value).

    A frozen msgspec struct, not a dataclass: a batch hashes each entity several times as a dict
    key and builds one per entity it reads back, and a struct does both in C, three to five
    times faster (measured on this machine with timeit).
    """

    entity_type: str
    key: str

    @property
    def tag(self) -> str:
        """Redis hash tag shared by every key of this entity."""
        return f"{self.entity_type}:{self.key}"


# Not cached: the pseudonymizer caches each side of an event whole, so these run only for a side it
# has not seen, nearly always a new identity. On benchmarks/core.py's stream of 200,000 events a
# cache here found 50 phones and 2,165 buildings in some 162,000 calls each, and cost more than it
# saved.
def normalise_phone(phone: str | None) -> str | None:
    """Digits only, Chinese country prefix removed; None when too short to identify anyone."""
    if not phone:
        return None
    # most phones are written as digits alone: nothing to fold or pick out
    digits = phone if phone.isascii() and phone.isdigit() else "".join(_DIGITS.findall(fold(phone)))
    if len(digits) == 13 and digits.startswith("861"):
        digits = digits[2:]
    elif len(digits) == 15 and digits.startswith("00861"):
        digits = digits[4:]
    return digits if len(digits) >= 7 else None


def _dashed_unit(folded_street: str) -> re.Match[str] | None:
    # Most streets have no dash, and searching one for the pattern tries it at every character
    # (0.9 us for a Chinese street, timeit here).
    return _DASHED_UNIT.search(folded_street) if "-" in folded_street else None


def normalise_building(address: Address | None) -> str | None:
    """The address cut to the building: unit, floor and room are dropped.

    ``科技园路12号3栋1单元502室``, ``科技园路12号3幢502``, ``科技园路12号3号楼`` and
    ``科技园路12号 3-1-502`` all become ``...科技园路12号3栋``.
    """
    if address is None or not address.street:
        return None
    street = fold(address.street)
    dashed = _dashed_unit(street)
    if dashed is not None:
        street = squeeze_folded(street[: dashed.start()]) + dashed.group(1) + "栋"
    else:
        street = squeeze_folded(street)
        # Cut at the first mark: what follows it is dropped, so it need not be rewritten.
        mark = _BUILDING_MARK.search(street)
        if mark is not None:
            street = street[: mark.start()] + "栋"
    return f"{_region(address.country, address.province, address.city)}|{street}"


@functools.lru_cache(maxsize=4096)
def _region(country: str | None, province: str | None, city: str | None) -> str:
    """Country, province and city, squeezed: a few thousand of them key every building of a country."""
    return "|".join(squeeze(part or "") for part in (country, province, city))


# A suspect sender's room, each time it ships (Pseudonymizer.nodes, outside the side cache).
@functools.lru_cache(maxsize=65536)
def normalise_room(address: Address | None) -> str | None:
    """The building plus the room number (the last number written after it); None without a room.

    ``3栋1单元502室``, ``3幢502``, ``3号楼1单元502`` and `` 3-1-502`` are one room. The unit is
    dropped because clerks often leave it out; two rooms 502 in two units of one building then
    share a key, a small price beside missing the same room written two ways.
    """
    building = normalise_building(address)
    if building is None or address is None or address.street is None:
        return None
    street = fold(address.street)
    dashed = _dashed_unit(street)
    if dashed is not None:
        room = dashed.group(3) or dashed.group(2)
    else:
        mark = _BUILDING_MARK.search(street)
        numbers = _DIGITS.findall(street[mark.end() :]) if mark is not None else []
        room = numbers[-1] if numbers else None
    return f"{building}|{room}" if room else None


def normalise_person(name: str | None, address: Address | None) -> str | None:
    """A name within its building (``王 伟`` and ``王伟`` are one name); None without either."""
    building = normalise_building(address)
    folded = squeeze(name or "")
    return f"{building}|{folded}" if building and len(folded) >= 2 else None


def clear_identities(event: ParcelEvent) -> dict[str, str]:
    """Entity type -> normalised clear identifier, for each entity the event names."""
    return {kind: clear for side, fields in _sides(event) for kind, clear in side(*fields)}


def _account(scope: str, account_id: str | None) -> str | None:
    """An account within the platform (or courier) that issued it."""
    return f"{squeeze(scope)}|{squeeze(account_id)}" if account_id else None


def _sender_identities(
    scope: str, phone: str | None, account_id: str | None, address: Address | None
) -> tuple[tuple[str, str], ...]:
    found = (
        ("sender_phone", normalise_phone(phone)),
        ("sender_account", _account(scope, account_id)),
        ("sender_address", normalise_building(address)),
    )
    return tuple((kind, value) for kind, value in found if value)


def _recipient_identities(
    scope: str, phone: str | None, account_id: str | None, address: Address | None
) -> tuple[tuple[str, str], ...]:
    found = (
        ("recipient", normalise_phone(phone) or _account(scope, account_id)),
        ("recipient_address", normalise_building(address)),
    )
    return tuple((kind, value) for kind, value in found if value)


def _pickup_identities(courier: str, pickup_point: str) -> tuple[tuple[str, str], ...]:
    return (("pickup_point", f"{squeeze(courier)}|{squeeze(pickup_point)}"),)


Side = Callable[..., tuple[tuple[str, str], ...]]


def _sides(event: ParcelEvent) -> tuple[tuple[Side, tuple[object, ...]], ...]:
    """Each side of the event (sender, recipient, pickup point) and the fields it names entities from."""
    scope = event.platform or event.courier
    sender, recipient = event.sender, event.recipient
    sides: tuple[tuple[Side, tuple[object, ...]], ...] = (
        (_sender_identities, (scope, sender.phone, sender.account_id, sender.address)),
        (_recipient_identities, (scope, recipient.phone, recipient.account_id, recipient.address)),
    )
    if event.pickup_point:
        sides += ((_pickup_identities, (event.courier, event.pickup_point)),)
    return sides


# Entries of each side's cache. Recipients are the misses: on benchmarks/throughput.py's stream
# (200,000 events) 82% of the misses of the one cache all sides shared, most of them people who get
# one parcel. A recipient's hits are mostly its parcel's next event, and 16,384 recipients hit as
# often as 131,072 did (36%). In caches of their own, sized so, entities() took 8.2 to 8.4 us an
# event where the shared cache took 8.4 to 9.6 (ad hoc, four alternated runs each).
_SIDE_CACHE_SIZES: Final[dict[Side, int]] = {
    _sender_identities: 131072,
    _recipient_identities: 16384,
    _pickup_identities: 32768,
}

_SHA256_BLOCK = 64
_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))


class Pseudonymizer:
    """Keyed pseudonyms: stable for one secret, unlinkable without it."""

    __slots__ = ("_cached", "_inner", "_outer", "key")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the pseudonym secret must be at least 16 bytes")
        # HMAC-SHA256 (RFC 2104) with the secret's inner and outer pad absorbed once, here: a key
        # then costs two copies of a hash state, where ``hmac.digest`` absorbs both pads again for
        # each key: 0.5 against 1.4 us (timeit here), and a stream of new recipients keys several
        # identities an event. ``hmac.HMAC.copy`` does the same at 0.8 us.
        # tests/detectors/test_entities.py holds the keys to ``hmac.digest``'s.
        padded = (hashlib.sha256(secret).digest() if len(secret) > _SHA256_BLOCK else secret).ljust(
            _SHA256_BLOCK, b"\0"
        )
        self._inner = hashlib.sha256(padded.translate(_IPAD))
        self._outer = hashlib.sha256(padded.translate(_OPAD))
        # Per instance, so that the caches never outlive (or mix) secrets.
        self.key = functools.lru_cache(maxsize=262144)(self._key)
        # A sender ships many parcels, a recipient gets several, a pickup point serves many: each
        # side's entities are cached whole (naming and keying them was among the worker's largest
        # costs). Not each identity as well: on a stream of new recipients that second cache missed
        # nearly always and cost more than the keying it saved.
        self._cached = {
            side: functools.lru_cache(maxsize=size)(functools.partial(self._refs, side))
            for side, size in _SIDE_CACHE_SIZES.items()
        }

    def __repr__(self) -> str:
        return "Pseudonymizer(secret=<hidden>)"

    def _key(self, entity_type: str, clear: str) -> str:
        inner = self._inner.copy()
        inner.update(f"{entity_type}\x1f{clear}".encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:24]

    def _refs(self, side: Side, fields: tuple[object, ...]) -> tuple[tuple[EntityRef, str], ...]:
        return tuple((EntityRef(kind, self._key(kind, clear)), clear) for kind, clear in side(*fields))

    def entities(self, event: ParcelEvent) -> tuple[tuple[EntityRef, str], ...]:
        """Each entity of ``event`` with its clear identifier (kept only for alert labels), in the
        order of :func:`clear_identities`."""
        cached = self._cached
        found: tuple[tuple[EntityRef, str], ...] = ()
        for side, fields in _sides(event):
            found += cached[side](fields)
        return found

    def nodes(self, event: ParcelEvent, entities: Sequence[tuple[EntityRef, str]]) -> tuple[str, ...]:
        """The sender's strong identifiers as ``type:pseudonym``, sorted: what links identities into clusters."""
        found = [f"{ref.entity_type}:{ref.key}" for ref, _ in entities if ref.entity_type in NODE_TYPES]
        room = normalise_room(event.sender.address)
        if room is not None:
            found.append(f"sender_room:{self.key('sender_room', room)}")
        person = normalise_person(event.sender.name, event.sender.address)
        if person is not None:
            found.append(f"sender_person:{self.key('sender_person', person)}")
        return tuple(sorted(found))
