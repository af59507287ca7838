"""Sliding event-time windows per entity: the semantics, in one place.

What a window holds (docs/windows.md says the same with a timeline):

* A parcel enters an entity's record set with its first accepted event, whatever its suspect
  mass (recording zero-mass parcels too is what makes redelivery and reordering harmless: the
  state is a function of the set of accepted events). Only parcels with mass above zero count.
  A record that never counted is *parked* apart from the entity, once per parcel (see
  :func:`park_updates`), and moves into the entity when it first counts. An event without suspect
  mass that is not a cancellation may come *parcel-wide* instead, naming no entity
  (:func:`park_parcels`): it belongs to every entity that holds or later takes its parcel.
* Its *anchor* is the earliest event time among its accepted events; its mass, weight and
  reasons are those of the accepted event with the greatest (rank, event time, event id), where
  a scale reading (rank 2) beats a declaration (rank 1). A redelivered event changes nothing.
* A cancellation retracts the parcel for good (a tombstone is kept so that a late event cannot
  bring it back).
* Time advances by the stream's *low watermark*: the smallest, over the input partitions that are
  not idle, of the greatest event time read from each (see :func:`progress`). An event whose time
  is below ``low watermark - allowed_lateness`` is *late*: counted and dead-lettered, never
  applied (an event ignored once must be ignored on every redelivery). That bound is also the
  *check horizon*: no accepted event can land before it any more, so windows ending before it
  are final.
* Records whose anchor is below ``entity watermark - retention`` (the entity's greatest accepted
  event time) are pruned; past ``max_parcels_per_entity`` records the oldest anchors are
  evicted. Memory per entity is therefore at most ``max_parcels_per_entity`` records plus a few
  meta fields.
* The window of rule R ending at event time ``e`` holds the live (not cancelled) records with
  anchor in ``(e - R.window, e]``. Window ends are the records' anchors.
* Window ends are checked in ascending order once they fall below the check horizon, and only
  then (an entity with unchecked ends waits in the *due* index). An alert is raised at the first
  end where the window's mass is at least ``R.threshold_kg`` with at least ``R.min_parcels``
  parcels (episode 1), or, once alerted, at least ``regrow_factor`` times the mass of the last
  alert (the next episode). Because each end is judged on final contents, the alerts do not
  depend on how partitions, batches or workers interleave.
* When every partition is idle (read to its end, nothing new for a while) the horizon moves to
  the end of time, so the last windows of a finished replay are judged too.

The memory store runs :func:`park_parcels`, :func:`park_updates` then :func:`apply_entity`; the
Redis store runs the same steps in Lua (``store_redis.lua``); the contract tests hold the two equal
and both equal to a brute-force oracle.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import msgspec

from detectors.entities import EntityRef
from detectors.errors import ConfigError
from detectors.rules import Rule

RANK_DECLARED = 1
RANK_MEASURED = 2
DEFAULT_LATENESS_S = 6 * 3600
# "Minus and plus infinity" in epoch milliseconds; powers of two so that Lua's doubles hold them exactly.
FAR_PAST_MS = -(2**62)
FAR_FUTURE_MS = 2**62


@dataclass(frozen=True, slots=True)
class WindowConfig:
    allowed_lateness_s: int = DEFAULT_LATENESS_S
    retention_s: int = 31 * 86400
    max_parcels_per_entity: int = 2000
    max_evidence: int = 200
    idle_ttl_s: int = 180 * 86400  # wall-clock expiry of entities that stop sending
    # An alert not acknowledged this long after it was handed out (wall clock) is handed out again:
    # its worker died before publishing it. Longer than a worker takes from store call to acknowledgement.
    reclaim_after_s: int = 60
    # Wall-clock life of a parcel's parked records after its last event (docs/windows.md); None: the
    # retention. Never longer than the retention, whatever is set.
    parked_ttl_s: int | None = None

    def __post_init__(self) -> None:
        if self.allowed_lateness_s < 0:
            raise ConfigError("allowed lateness must not be negative")
        if self.retention_s <= 0 or self.max_parcels_per_entity < 1 or self.max_evidence < 1:
            raise ConfigError("retention, max parcels per entity and max evidence must be positive")
        if self.reclaim_after_s < 1:
            raise ConfigError("the reclaim time of unacknowledged alerts must be at least 1 s")
        if self.parked_ttl_s is not None and self.parked_ttl_s < max(self.allowed_lateness_s, 1):
            raise ConfigError(
                f"the parked records' life (PARCELWATCH_PARKED_TTL, {self.parked_ttl_s} s) must be at least the "
                f"allowed lateness ({self.allowed_lateness_s} s): a parcel's events may arrive that far out of order"
            )

    @property
    def parked_life_s(self) -> int:
        """How long a parcel's parked records are kept after their last write (wall clock)."""
        return self.retention_s if self.parked_ttl_s is None else min(self.parked_ttl_s, self.retention_s)

    @classmethod
    def for_rules(cls, longest_window_s: int, *, parked_ttl_s: int | None = None, **overrides: int) -> WindowConfig:
        """Retain what the longest window plus the lateness can still reach."""
        lateness = overrides.pop("allowed_lateness_s", DEFAULT_LATENESS_S)
        return cls(
            allowed_lateness_s=lateness,
            retention_s=longest_window_s + lateness,
            parked_ttl_s=parked_ttl_s,
            **overrides,
        )


class ParcelUpdate(msgspec.Struct, frozen=True, gc=False):
    """One event of one parcel, as it concerns the windows of one entity.

    A frozen msgspec struct, not a dataclass: a batch builds one per event, and a struct is built
    in C (like :class:`detectors.entities.EntityRef`).
    """

    parcel_key: str
    event_time_ms: int
    mass_kg: float
    weight_kg: float
    rank: int
    event_id: str
    cancelled: bool = False
    reasons: tuple[str, ...] = ()


def update_row(u: ParcelUpdate) -> list[object]:
    """One update as the Lua store reads it: parcel, time, mass, weight, rank, event id, cancelled, reasons."""
    return [
        u.parcel_key,
        u.event_time_ms,
        u.mass_kg,
        u.weight_kg,
        u.rank,
        u.event_id,
        1 if u.cancelled else 0,
        ",".join(u.reasons),
    ]


class EntityUpdates(msgspec.Struct, frozen=True, gc=False):
    """One entity's updates of a batch, in stream order: a frozen msgspec struct, as a batch builds
    one for each entity it names (three or four per event)."""

    entity: EntityRef
    updates: tuple[ParcelUpdate, ...]


@dataclass(frozen=True, slots=True)
class Progress:
    """Where the stream stands: events before ``late_before`` are late; ends before ``check_until`` are final."""

    check_until: int = FAR_FUTURE_MS
    late_before: int = FAR_PAST_MS


def progress(maxima: dict[int, int], idle: set[int], partitions: int, lateness_ms: int) -> Progress:
    """The stream's progress from each partition's greatest event time and idleness.

    A partition that has not reported holds time back (it may still bring anything); an idle one
    (read to its end, quiet) does not. When all are idle, everything read so far is final.
    """
    active = [maxima.get(p) for p in range(partitions) if p not in idle]
    if not active:
        return Progress(FAR_FUTURE_MS, (max(maxima.values()) - lateness_ms) if maxima else FAR_PAST_MS)
    if any(t is None for t in active):
        return Progress(FAR_PAST_MS, FAR_PAST_MS)
    low = min(t for t in active if t is not None) - lateness_ms
    return Progress(low, low)


@dataclass(frozen=True, slots=True)
class Evidence:
    parcel_key: str
    anchor_ms: int
    mass_kg: float
    weight_kg: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    """What the store decided: one (rule, entity, episode) and the window that proves it."""

    alert_id: str
    rule_id: str
    entity: EntityRef
    episode: int
    window_s: int
    severity: str
    suspect_mass_kg: float
    total_weight_kg: float
    parcel_count: int
    first_event_ms: int
    last_event_ms: int
    evidence: tuple[Evidence, ...]
    reason_counts: tuple[tuple[str, int], ...]


STATUSES = ("added", "updated", "retracted", "duplicate", "late", "pruned", "evicted", "suppressed")


@dataclass(slots=True)
class ApplyStats:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))

    def add(self, other: ApplyStats) -> None:
        for key, value in other.counts.items():
            self.counts[key] += value


def alert_id(rule_id: str, entity: EntityRef, episode: int) -> str:
    """Stable for one (rule, entity, episode): replays and racing workers agree on it."""
    digest = hashlib.sha1(  # noqa: S324 - an identifier, not a security boundary
        f"{rule_id}|{entity.entity_type}|{entity.key}|{episode}".encode()
    ).hexdigest()
    return digest[:24]


@dataclass(slots=True)
class Record:
    anchor_ms: int
    mass_kg: float
    weight_kg: float
    rank: int
    version_ms: int
    version_id: str
    cancelled: bool
    reasons: tuple[str, ...]

    def version(self) -> tuple[int, int, str]:
        return (self.rank, self.version_ms, self.version_id)


@dataclass(slots=True)
class EntityState:
    """Mutable state of one entity in the memory store (the Redis store keeps the same fields)."""

    records: dict[str, Record] = field(default_factory=dict)
    watermark_ms: int | None = None
    episodes: dict[str, int] = field(default_factory=dict)
    last_alert_mass: dict[str, float] = field(default_factory=dict)
    pending: dict[str, RaisedAlert] = field(default_factory=dict)
    claimed_ms: dict[str, int] = field(default_factory=dict)  # alert id -> wall-clock ms last handed out
    check_from: int | None = None  # lowest window end not yet judged
    check_to: int | None = None  # ends from here on are not affected by any change (exclusive)
    suppressed_until: dict[str, int] = field(default_factory=dict)  # rule -> wall-clock ms (analyst decision)


# Where a parcel's record for an entity lives while it has never counted (see :func:`park_updates`):
# parcel key -> parked tag (:func:`parked_tag`) -> the parked record, or the entity itself: the
# record is in the entity's own state (the entity *holds* the parcel). Under PARCEL_WIDE, the
# record of the parcel's parcel-wide updates (:func:`park_parcels`).
Parked = dict[str, dict[str, "Record | EntityRef"]]
PARCEL_WIDE = "~"

# A parked record names its entity by the first 10 hex digits (40 bits) of its pseudonym. The tags
# were most of a parked string, and parked strings most of Redis's memory (docs/windows.md). A tag
# only tells apart the few entities that name one parcel: two of one type meet in a prefix about
# once in 10^12 such pairs, and then share that parcel's record, which the memory store models too.
PARKED_KEY_CHARS = 10


def parked_tag(entity: EntityRef) -> str:
    """The name of ``entity`` among a parcel's parked records."""
    return f"{entity.entity_type}:{entity.key[:PARKED_KEY_CHARS]}"


def holds(value: Record | EntityRef | None) -> bool:
    """Whether a parked tag's value marks an entity that holds the parcel."""
    return isinstance(value, EntityRef)


def fold_records(rec: Record | None, other: Record) -> Record:
    """A new record: ``rec`` with ``other`` folded in (earliest anchor, greater version, a
    cancellation in either): the parcel-wide record meeting an entity's own (script: ``fold``), and
    two clusters' records of one parcel joining (:func:`detectors.clusters.merge_into`)."""
    if rec is None:
        return replace(other)
    best = other if other.version() > rec.version() else rec
    cancelled = rec.cancelled or other.cancelled
    return Record(
        anchor_ms=min(rec.anchor_ms, other.anchor_ms),
        mass_kg=0.0 if cancelled else best.mass_kg,
        weight_kg=best.weight_kg,
        rank=best.rank,
        version_ms=best.version_ms,
        version_id=best.version_id,
        cancelled=cancelled,
        reasons=best.reasons,
    )


def _parked_view(slot: dict[str, Record | EntityRef], tag: str) -> Record | None:
    """An entity's parked record of a parcel it does not hold, with the parcel-wide one folded in;
    a new record, so that merging into it leaves the slot as it was."""
    own = slot.get(tag)
    wide = slot.get(PARCEL_WIDE)
    own_rec = own if isinstance(own, Record) else None
    if isinstance(wide, Record):
        return fold_records(own_rec, wide)
    return None if own_rec is None else replace(own_rec)


def _merge(rec: Record | None, u: ParcelUpdate) -> tuple[str, Record | None, int | None, int | None]:
    """Fold one accepted update into a parcel's record; return its status, the record, and the
    anchors (new, old) where a window may now cross (None when nothing was applied to a tombstone).

    Only a record that is live afterwards can make a window cross; a retraction or a lower mass
    only lowers sums, so it schedules no check.
    """
    if rec is not None:
        if rec.cancelled:
            return "duplicate", None, None, None
        old_anchor = rec.anchor_ms
        new_anchor = min(old_anchor, u.event_time_ms)
        if u.cancelled:
            rec.cancelled, rec.mass_kg, rec.anchor_ms = True, 0.0, new_anchor
            return "retracted", rec, None, None
        changed = new_anchor != old_anchor
        if (u.rank, u.event_time_ms, u.event_id) > rec.version():
            changed = changed or (u.mass_kg, u.weight_kg, u.reasons) != (rec.mass_kg, rec.weight_kg, rec.reasons)
            rec.mass_kg, rec.weight_kg, rec.reasons = u.mass_kg, u.weight_kg, u.reasons
            rec.rank, rec.version_ms, rec.version_id = u.rank, u.event_time_ms, u.event_id
        rec.anchor_ms = new_anchor
        if not changed:
            return "duplicate", rec, None, None
        return ("updated", rec, new_anchor, old_anchor) if rec.mass_kg > 0 else ("updated", rec, None, None)
    rec = Record(
        anchor_ms=u.event_time_ms,
        mass_kg=0.0 if u.cancelled else u.mass_kg,
        weight_kg=u.weight_kg,
        rank=u.rank,
        version_ms=u.event_time_ms,
        version_id=u.event_id,
        cancelled=u.cancelled,
        reasons=u.reasons,
    )
    if u.cancelled:
        return "retracted", rec, None, None
    if u.mass_kg <= 0:
        return "added", rec, None, None
    return "added", rec, u.event_time_ms, u.event_time_ms


def _live(rec: Record) -> bool:
    return not rec.cancelled and rec.mass_kg > 0


def _apply_update(
    state: EntityState, u: ParcelUpdate, late_before: int, parked: Parked | None, entity: EntityRef, tag: str
) -> tuple[str, int | None, int | None]:
    """Apply one update; return its status and the anchors (new, old) where a window may now cross.

    With ``parked`` (entities, not clusters), a record the entity does not hold is looked up among
    the parked ones, the parcel-wide record folded in; it moves into the entity once it is live,
    and a record that is still not live is parked under the entity's tag. Only records held by the
    entity move its watermark.
    """
    if u.event_time_ms < late_before:
        return "late", None, None
    rec = state.records.get(u.parcel_key)
    held = rec is not None
    slot = None
    if not held and parked is not None:
        slot = parked.setdefault(u.parcel_key, {})
        rec = _parked_view(slot, tag)
    status, rec, new_anchor, old_anchor = _merge(rec, u)
    if rec is None:
        return status, None, None
    if held or slot is None or _live(rec):
        state.records[u.parcel_key] = rec
        _advance(state, u.event_time_ms)
        if slot is not None:
            slot[tag] = entity
    else:
        slot[tag] = rec
    return status, new_anchor, old_anchor


def park_updates(
    parked: Parked, entity: EntityRef, updates: Sequence[ParcelUpdate], late_before: int, stats: ApplyStats
) -> list[ParcelUpdate]:
    """Apply to parked records the updates that cannot make a record live; return the others, in order.

    Nearly every parcel scores zero. Its records would never count, but they must be kept: a later
    event may give the parcel mass, and then its anchor is the earliest of all its events, and a
    newer zero-mass version must still outrank an older one with mass. Such records are *parked*:
    kept once per parcel (in Redis one string, each distinct record once), not in the entities' windows, which
    an entity with no live parcel then never has. An update with no mass, not a cancellation, on a
    parcel the entity does not hold goes here; it cannot make the record live. The rest (mass,
    cancellations, parcels the entity holds) go through :func:`apply_entity`, in order, with every
    later update of their parcel: each parcel's updates are applied in the order they came, so the
    statistics are those of applying them all in order.

    The pipeline sends such updates once, parcel-wide (:func:`park_parcels`), not to each entity;
    this path serves callers that give an entity every update of its parcels.
    """
    tag = parked_tag(entity)
    rest: list[ParcelUpdate] = []
    applied: set[str] = set()  # parcels with an update for apply_entity: their later ones follow it, in order
    for u in updates:
        if u.mass_kg > 0 or u.cancelled or u.parcel_key in applied:
            rest.append(u)
            applied.add(u.parcel_key)
        elif u.event_time_ms < late_before:
            stats.counts["late"] += 1
        else:
            slot = parked.setdefault(u.parcel_key, {})
            if holds(slot.get(tag)):
                rest.append(u)
                applied.add(u.parcel_key)
                continue
            stats.counts[_park(slot, tag, u)] += 1
    return rest


def _park(slot: dict[str, Record | EntityRef], tag: str, u: ParcelUpdate) -> str:
    """Fold ``u`` (no mass, not a cancellation) into the parked record under ``tag``; its status."""
    stored = slot.get(tag)
    status, rec, _, _ = _merge(stored if isinstance(stored, Record) else None, u)
    if rec is not None:
        slot[tag] = rec
    return status


def parcel_wide(u: ParcelUpdate) -> bool:
    """Whether ``u`` can go parcel-wide (:func:`park_parcels`): no mass, not a cancellation."""
    return u.mass_kg <= 0 and not u.cancelled


def park_parcels(
    parked: Parked, updates: Sequence[ParcelUpdate], late_before: int, stats: ApplyStats
) -> dict[EntityRef, list[ParcelUpdate]]:
    """Fold parcel-wide updates (:func:`parcel_wide`) into their parcels' parcel-wide records;
    return, for each entity marked as holding one of their parcels, its updates in order, to apply
    to it where its records still hold the parcel (pruning and the cap leave the mark).

    Nearly every event has no suspect mass, and such an event cannot make any entity's record of
    its parcel live: it is sent once, for its parcel, not once for each entity it names (naming
    and keying its entities, and an update for each, were the worker's largest cost). An entity's
    record of a parcel is then the fold of the updates it was given and of every parcel-wide
    update of the parcel, whichever came first: an entity that holds the parcel gets the update
    now, one that takes the parcel later folds the parcel-wide record in then
    (:func:`_apply_update`).
    """
    holders: dict[EntityRef, list[ParcelUpdate]] = {}
    for u in updates:
        if u.event_time_ms < late_before:
            stats.counts["late"] += 1
            continue
        slot = parked.setdefault(u.parcel_key, {})
        stats.counts[_park(slot, PARCEL_WIDE, u)] += 1
        for value in slot.values():
            if isinstance(value, EntityRef):
                holders.setdefault(value, []).append(u)
    return holders


def _advance(state: EntityState, event_time_ms: int) -> None:
    if state.watermark_ms is None or event_time_ms > state.watermark_ms:
        state.watermark_ms = event_time_ms


def _prune(state: EntityState, config: WindowConfig, stats: ApplyStats, check_until: int) -> None:
    """Drop what no window still to be judged can reach, then cap the record count."""
    if state.watermark_ms is None:
        return
    horizon = min(state.watermark_ms, check_until)
    if state.check_from is not None:
        horizon = min(horizon, state.check_from)
    cutoff = horizon - config.retention_s * 1000
    for key in [k for k, r in state.records.items() if r.anchor_ms < cutoff]:
        del state.records[key]
        stats.counts["pruned"] += 1
    excess = len(state.records) - config.max_parcels_per_entity
    if excess > 0:
        # Same order as ZPOPMIN: by anchor, then by member bytes.
        oldest = sorted(state.records.items(), key=lambda kv: (kv[1].anchor_ms, kv[0].encode()))[:excess]
        for key, _ in oldest:
            del state.records[key]
        stats.counts["evicted"] += excess


def live_sorted(records: Iterable[tuple[str, Record]]) -> list[tuple[str, Record]]:
    """Live records by anchor then key bytes: the order the Redis sorted set returns."""
    return sorted(
        ((k, r) for k, r in records if not r.cancelled and r.mass_kg > 0),
        key=lambda kv: (kv[1].anchor_ms, kv[0].encode()),
    )


def milligrams(mass_kg: float) -> int:
    """A mass in whole milligrams, as the Redis store rounds it (store_redis.lua: ``rec.g``)."""
    return math.floor(mass_kg * 1_000_000 + 0.5)


def window_mass_kg(window: Iterable[tuple[str, Record]]) -> float:
    """The window's mass, added up in whole milligrams.

    Integers add up to the same sum in any order: the Redis store slides its windows from one
    call to the next (adding what enters, subtracting what leaves) and still gets the mass this
    store gets by adding each window afresh.
    """
    return sum(milligrams(r.mass_kg) for _, r in window) / 1_000_000


def window_alert(
    rule: Rule, entity: EntityRef, episode: int, window: Sequence[tuple[str, Record]], config: WindowConfig
) -> RaisedAlert:
    """The alert for ``window`` (live records sorted by anchor), evidence heaviest first."""
    mass = window_mass_kg(window)
    by_mass = sorted(window, key=lambda kv: (-kv[1].mass_kg, kv[1].anchor_ms, kv[0].encode()))
    reason_counts: dict[str, int] = {}
    for _, rec in window:
        for code in rec.reasons:
            reason_counts[code] = reason_counts.get(code, 0) + 1
    return RaisedAlert(
        alert_id=alert_id(rule.id, entity, episode),
        rule_id=rule.id,
        entity=entity,
        episode=episode,
        window_s=rule.window_s,
        severity=rule.severity,
        suspect_mass_kg=round(mass, 3),
        total_weight_kg=round(sum(r.weight_kg for _, r in window), 3),
        parcel_count=len(window),
        first_event_ms=window[0][1].anchor_ms,
        last_event_ms=window[-1][1].anchor_ms,
        evidence=tuple(
            Evidence(k, r.anchor_ms, round(r.mass_kg, 3), round(r.weight_kg, 3), r.reasons)
            for k, r in by_mass[: config.max_evidence]
        ),
        reason_counts=tuple(sorted(reason_counts.items())),
    )


def _check_rule(
    state: EntityState,
    rule: Rule,
    entity: EntityRef,
    lo: int,
    records: Sequence[tuple[str, Record]],
    config: WindowConfig,
    stats: ApplyStats,
    now_ms: int,
) -> None:
    """Judge the window ends from ``lo`` on, ascending; new alerts go to ``state.pending``.

    ``records``: the live records up to the last end to judge, as far back as the widest rule
    reaches (read once for all rules); this rule uses those its own window can reach. While an
    analyst's false-positive decision suppresses the rule for this entity (until a wall-clock
    time), a crossing is counted as suppressed and raises nothing, episode unchanged.
    """
    width = rule.window_s * 1000
    live = [kv for kv in records if kv[1].anchor_ms > lo - width]
    start = 0
    for end, (_key, rec) in enumerate(live):
        while live[start][1].anchor_ms <= rec.anchor_ms - width:
            start += 1
        if rec.anchor_ms < lo or (end + 1 < len(live) and live[end + 1][1].anchor_ms == rec.anchor_ms):
            continue
        episode = state.episodes.get(rule.id, 0)
        if episode > 0 and rule.regrow_factor == 0:
            continue
        window = live[start : end + 1]
        window_mass = window_mass_kg(window)
        target = rule.threshold_kg if episode == 0 else state.last_alert_mass[rule.id] * rule.regrow_factor
        if window_mass >= target and len(window) >= rule.min_parcels:
            if state.suppressed_until.get(rule.id, FAR_PAST_MS) > now_ms:
                stats.counts["suppressed"] += 1
                continue
            state.episodes[rule.id] = episode + 1
            state.last_alert_mass[rule.id] = window_mass
            alert = window_alert(rule, entity, episode + 1, window, config)
            state.pending[alert.alert_id] = alert
            state.claimed_ms[alert.alert_id] = now_ms


def apply_entity(
    state: EntityState,
    entity: EntityRef,
    updates: Sequence[ParcelUpdate],
    rules: Sequence[Rule],
    config: WindowConfig,
    at: Progress | None = None,
    now_ms: int = 0,
    judge_from: int | None = None,
    parked: Parked | None = None,
) -> tuple[ApplyStats, list[RaisedAlert]]:
    """Apply ``updates`` to one entity, prune, judge the ends that ``at`` made final.

    Returns the stats and the alerts this call raised (``state.pending`` keeps every alert until it
    is acknowledged; the store hands out forgotten ones again). ``state.check_from`` tells
    whether the entity still has ends to judge (it then belongs in the due index).
    ``judge_from``: the updates change no window ending before it (clusters: ends before the
    event's time were judged on the events up to them, and stay judged). ``parked``: the parked
    records (:func:`park_updates`), for entities; None keeps every record in the entity (clusters).
    """
    at = at or Progress()
    stats = ApplyStats()
    before = set(state.pending)
    lo: int | None = None
    hi: int | None = None
    tag = parked_tag(entity)
    for update in updates:
        status, new_anchor, old_anchor = _apply_update(state, update, at.late_before, parked, entity, tag)
        stats.counts[status] += 1
        for anchor in (new_anchor, old_anchor):
            if anchor is not None:
                lo = anchor if lo is None else min(lo, anchor)
                hi = anchor if hi is None else max(hi, anchor)
    reach = max((rule.window_s * 1000 for rule in rules), default=0)
    if lo is not None and hi is not None and judge_from is not None:
        lo = max(lo, judge_from)
        if lo >= hi + reach:
            lo = hi = None
    if lo is not None and hi is not None:
        state.check_from = lo if state.check_from is None else min(state.check_from, lo)
        state.check_to = hi + reach if state.check_to is None else max(state.check_to, hi + reach)
    _prune(state, config, stats, at.check_until)
    if state.check_from is not None and state.check_to is not None and state.check_from < at.check_until:
        lo_end, upto = state.check_from, min(at.check_until, state.check_to) - 1
        records = [kv for kv in live_sorted(state.records.items()) if lo_end - reach < kv[1].anchor_ms <= upto]
        for rule in rules:
            _check_rule(state, rule, entity, lo_end, records, config, stats, now_ms)
        if state.check_to <= at.check_until:
            state.check_from = state.check_to = None
        else:
            state.check_from = at.check_until
    raised = [a for alert_id, a in state.pending.items() if alert_id not in before]
    return stats, sorted(raised, key=lambda a: (a.last_event_ms, a.alert_id))
