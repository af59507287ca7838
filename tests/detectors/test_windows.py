"""Window semantics against the brute-force oracle, and hand-drawn timelines."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.entities import EntityRef
from detectors.errors import ConfigError
from detectors.rules import Rule
from detectors.windows import (
    FAR_FUTURE_MS,
    FAR_PAST_MS,
    PARCEL_WIDE,
    ApplyStats,
    EntityState,
    ParcelUpdate,
    Parked,
    Progress,
    RaisedAlert,
    Record,
    WindowConfig,
    apply_entity,
    live_sorted,
    park_parcels,
    park_updates,
    progress,
)
from tests.detectors.strategies import HOUR, T0, parcel_updates
from tests.detectors.test_store_contract import split_parcel_wide
from tests.detectors.window_oracle import oracle_parcels, oracle_window

ENTITY = EntityRef("sender_phone", "abc123")
LATENESS_MS = 6 * HOUR
BIG = WindowConfig(allowed_lateness_s=6 * 3600, retention_s=10**7, max_parcels_per_entity=10**6)
NOW = Progress()  # judge at once, nothing late


def rule(window_h: int = 24, threshold: float = 5.0, min_parcels: int = 2, regrow: float = 2.0) -> Rule:
    return Rule("r1", "test rule", "sender_phone", window_h * 3600, threshold, min_parcels, "high", regrow)


def upd(
    key: str, hour: float, mass: float, rank: int = 1, event_id: str = "e", cancelled: bool = False
) -> ParcelUpdate:
    return ParcelUpdate(key, T0 + int(hour * HOUR), mass, mass + 1.0, rank, event_id, cancelled, ("DENSITY_HIGH",))


def single_partition_clock(seen_max: int | None) -> Progress:
    return progress({} if seen_max is None else {0: seen_max}, set(), 1, LATENESS_MS)


def step(
    state: EntityState, parked: Parked | None, updates: list[ParcelUpdate], rules: list[Rule], at: Progress
) -> tuple[ApplyStats, list[RaisedAlert]]:
    """One store call's work for one entity: park what cannot count (when ``parked``), apply the rest."""
    if parked is None:
        return apply_entity(state, ENTITY, updates, rules, BIG, at)
    stats = ApplyStats()
    rest = park_updates(parked, ENTITY, updates, at.late_before, stats)
    applied, raised = apply_entity(state, ENTITY, rest, rules, BIG, at, parked=parked)
    stats.add(applied)
    return stats, raised


@given(parcel_updates(), st.integers(1, 40), st.booleans())
@settings(max_examples=300, deadline=None)
def test_window_contents_equal_the_oracle_at_every_end(updates: list[ParcelUpdate], width_h: int, parks: bool) -> None:
    state = EntityState()
    parked: Parked | None = {} if parks else None
    delivered: list[tuple[ParcelUpdate, int]] = []
    seen_max: int | None = None
    for start in range(0, len(updates), 5):
        chunk = updates[start : start + 5]
        at = single_partition_clock(seen_max)
        step(state, parked, chunk, [rule(width_h)], at)
        delivered += [(u, at.late_before) for u in chunk]
        seen_max = max([u.event_time_ms for u in chunk] + ([seen_max] if seen_max is not None else []))
    expected = oracle_parcels(delivered)
    live = live_sorted(state.records.items())
    ends = {r.anchor_ms for _, r in live} | {p.anchor_ms for p in expected.values()}
    for end in ends:
        got = {k for k, r in live if end - width_h * HOUR < r.anchor_ms <= end}
        assert got == oracle_window(expected, end, width_h * HOUR)
        assert sum(state.records[k].mass_kg for k in got) == pytest.approx(sum(expected[k].mass_kg for k in got))


@given(parcel_updates(), st.booleans())
@settings(max_examples=200, deadline=None)
def test_redelivering_any_event_changes_nothing(updates: list[ParcelUpdate], parks: bool) -> None:
    once, twice = EntityState(), EntityState()
    parked_once: Parked | None = {} if parks else None
    parked_twice: Parked | None = {} if parks else None
    at = Progress(check_until=FAR_FUTURE_MS, late_before=T0 + 24 * HOUR)
    step(once, parked_once, updates, [rule()], at)
    step(twice, parked_twice, updates, [rule()], at)
    step(twice, parked_twice, updates, [rule()], at)
    assert twice.records == once.records
    assert parked_twice == parked_once
    assert twice.episodes == once.episodes


@given(parcel_updates(), st.integers(1, 6), st.randoms(use_true_random=False))
@settings(max_examples=300, deadline=None)
def test_parking_changes_no_window_and_no_alert(updates: list[ParcelUpdate], chunk: int, rnd: random.Random) -> None:
    """Records that never counted kept apart from the entity: the same live records, the same alerts,
    the same statistics; the entity holds no parcel that never counted, and a parked parcel is never live."""
    plain, parted = EntityState(), EntityState()
    parked: Parked = {}
    rules = [rule(24, 3.0, 1, 1.5)]
    seen_max: int | None = None
    for start in range(0, len(updates), chunk):
        part = updates[start : start + chunk]
        at = single_partition_clock(seen_max)
        want = step(plain, None, part, rules, at)
        got = step(parted, parked, part, rules, at)
        assert (got[0].counts, got[1]) == (want[0].counts, want[1])
        seen_max = max([u.event_time_ms for u in part] + ([seen_max] if seen_max is not None else []))
        if rnd.random() < 0.3:
            assert step(plain, None, [], rules, Progress())[1] == step(parted, parked, [], rules, Progress())[1]
    assert live_sorted(parted.records.items()) == live_sorted(plain.records.items())
    for key, rec in parted.records.items():
        assert parked[key][ENTITY.tag] == ENTITY
        assert rec == plain.records[key]
    for key, slot in parked.items():
        rec = slot.get(ENTITY.tag)
        if isinstance(rec, Record):
            assert key not in parted.records and (rec.cancelled or rec.mass_kg <= 0) and rec == plain.records[key]


@given(
    st.lists(
        st.tuples(st.integers(0, 200), st.sampled_from([0.0, 1.0, 2.5, 4.0])),
        min_size=1,
        max_size=30,
        unique_by=lambda point: point[0],  # simultaneous parcels may alert before the last arrives
    )
)
@settings(max_examples=200, deadline=None)
def test_in_order_stream_alerts_at_the_first_crossing_end(points: list[tuple[int, float]]) -> None:
    """Judged at once and in event-time order, episode 1 is raised at the oracle's first crossing end."""
    updates = [upd(f"p{i}", hour, mass) for i, (hour, mass) in enumerate(sorted(points))]
    r = rule(window_h=24, threshold=6.0, min_parcels=2, regrow=0)
    state = EntityState()
    raised: dict[str, RaisedAlert] = {}
    for u in updates:
        _, pending = apply_entity(state, ENTITY, [u], [r], BIG, NOW)
        for alert in pending:
            raised.setdefault(alert.alert_id, alert)
    parcels = oracle_parcels([(u, FAR_PAST_MS) for u in updates])
    first = None
    for end in sorted({p.anchor_ms for p in parcels.values()}):
        window = oracle_window(parcels, end, 24 * HOUR)
        if sum(parcels[k].mass_kg for k in window) >= 6.0 and len(window) >= 2:
            first = (end, window)
            break
    if first is None:
        assert raised == {}
    else:
        (alert,) = raised.values()
        assert alert.last_event_ms == first[0]
        assert {e.parcel_key for e in alert.evidence} == first[1]


def _run_partitioned(partitions: list[list[ParcelUpdate]], order: list[int], rules: list[Rule]) -> list[RaisedAlert]:
    """Deliver partition heads in ``order`` chunk by chunk, as a worker would, then flush as idle."""
    state = EntityState()
    maxima: dict[int, int] = {}
    cursors = [0] * len(partitions)
    alerts: dict[str, RaisedAlert] = {}
    for p in order:
        chunk = partitions[p][cursors[p] : cursors[p] + 2]
        cursors[p] += len(chunk)
        at = progress(maxima, set(), len(partitions), LATENESS_MS)
        _, pending = apply_entity(state, ENTITY, chunk, rules, BIG, at)
        alerts.update({a.alert_id: a for a in pending})
        if chunk:
            maxima[p] = max([maxima.get(p, chunk[0].event_time_ms)] + [u.event_time_ms for u in chunk])
    flush = progress(maxima, set(range(len(partitions))), len(partitions), LATENESS_MS)
    _, pending = apply_entity(state, ENTITY, [], rules, BIG, flush)
    alerts.update({a.alert_id: a for a in pending})
    return sorted(alerts.values(), key=lambda a: a.alert_id)


@given(
    st.lists(st.tuples(st.integers(0, 300), st.sampled_from([0.5, 1.0, 2.5, 4.0])), min_size=1, max_size=40),
    st.integers(1, 4),
    st.randoms(use_true_random=False),
)
@settings(max_examples=200, deadline=None)
def test_alerts_do_not_depend_on_how_partitions_interleave(
    points: list[tuple[int, float]], n_partitions: int, rnd: random.Random
) -> None:
    """Each partition in event-time order (as a keyed topic is); any interleaving, same alerts."""
    parts: list[list[ParcelUpdate]] = [[] for _ in range(n_partitions)]
    for i, (hour, mass) in enumerate(points):
        parts[rnd.randrange(n_partitions)].append(upd(f"p{i:03d}", hour, mass))
    for part in parts:
        part.sort(key=lambda u: u.event_time_ms)
    rules = [rule(24, 6.0, 2, 1.5), rule(72, 9.0, 3, 0)]
    rules[1] = Rule("r2", "longer", "sender_phone", 72 * 3600, 9.0, 3, "medium", 0)
    schedules = []
    for _ in range(2):
        order = [p for p, part in enumerate(parts) for _ in range(0, len(part) + 1, 2)]
        rnd.shuffle(order)
        schedules.append(order)
    first, second = (_run_partitioned(parts, order, rules) for order in schedules)
    assert first == second


def test_ends_wait_for_the_horizon_and_late_events_are_refused() -> None:
    """
    hour:    0    10   20         40
    a        3kg                        check horizon 15: the end at a is judged, b's end waits
    b             4kg
    c                        late       event at hour 5 arrives when late_before is 12
    """
    r = rule(window_h=24, threshold=6.0, min_parcels=2, regrow=0)
    state = EntityState()
    _, alerts = apply_entity(
        state,
        ENTITY,
        [upd("a", 0, 3.0), upd("b", 10, 4.0)],
        [r],
        BIG,
        Progress(check_until=T0 + 5 * HOUR, late_before=T0 - HOUR),
    )
    assert alerts == [] and state.check_from == T0 + 5 * HOUR
    stats, alerts = apply_entity(
        state, ENTITY, [upd("c", 5, 9.0)], [r], BIG, Progress(check_until=T0 + 12 * HOUR, late_before=T0 + 12 * HOUR)
    )
    assert stats.counts["late"] == 1 and "c" not in state.records
    assert [a.last_event_ms for a in alerts] == [T0 + 10 * HOUR]
    assert state.check_from == T0 + 12 * HOUR  # b's window still reaches ends up to hour 34


def test_timeline_scale_reading_cancellation() -> None:
    """
    hour:   0     2     4          20
    a       D3 -- M6                       declared 3 kg, hub scale says 6 kg: a counts 6
    b             D2 ------ X              cancelled at hour 20: retracted
    """
    state = EntityState()
    r = rule(window_h=24, threshold=100.0)
    apply_entity(state, ENTITY, [upd("a", 0, 3.0), upd("b", 2, 2.0)], [r], BIG, NOW)
    apply_entity(state, ENTITY, [upd("a", 4, 6.0, rank=2, event_id="scale")], [r], BIG, NOW)
    stats, _ = apply_entity(state, ENTITY, [upd("b", 20, 0.0, cancelled=True)], [r], BIG, NOW)
    assert state.records["a"].mass_kg == 6.0 and state.records["a"].anchor_ms == T0
    assert state.records["b"].cancelled and stats.counts["retracted"] == 1
    # A declaration arriving after the scale reading does not undo it.
    apply_entity(state, ENTITY, [upd("a", 5, 3.0, rank=1, event_id="late-decl")], [r], BIG, NOW)
    assert state.records["a"].mass_kg == 6.0


def test_episodes_regrow_and_alert_ids_are_stable() -> None:
    r = rule(window_h=1000, threshold=5.0, min_parcels=1, regrow=2.0)
    state = EntityState()
    _, first = apply_entity(state, ENTITY, [upd("a", 0, 6.0)], [r], BIG, NOW)
    _, still = apply_entity(state, ENTITY, [upd("b", 1, 5.0)], [r], BIG, NOW)
    _, grown = apply_entity(state, ENTITY, [upd("c", 2, 2.0)], [r], BIG, NOW)
    assert [a.episode for a in first] == [1]
    assert still == []  # 11 kg < 2 x 6 kg; the first alert, not yet acknowledged, is not handed out again
    assert [a.episode for a in grown] == [2]
    assert set(state.pending) == {first[0].alert_id, grown[0].alert_id}  # both wait for acknowledgement
    assert grown[-1].suspect_mass_kg == 13.0
    again = EntityState()
    _, replay = apply_entity(again, ENTITY, [upd("a", 0, 6.0)], [r], BIG, NOW)
    assert replay[0].alert_id == first[0].alert_id


def test_memory_per_entity_is_capped_and_old_records_pruned() -> None:
    config = WindowConfig(allowed_lateness_s=3600, retention_s=48 * 3600, max_parcels_per_entity=5)
    state = EntityState()
    stats, _ = apply_entity(state, ENTITY, [upd(f"p{i}", i, 1.0) for i in range(8)], [rule()], config, NOW)
    assert len(state.records) == 5 and stats.counts["evicted"] == 3
    stats, _ = apply_entity(state, ENTITY, [upd("later", 100, 1.0)], [rule()], config, NOW)
    assert set(state.records) == {"later"} and stats.counts["pruned"] == 5


def test_progress_is_held_back_by_silent_partitions_and_released_by_idle_ones() -> None:
    assert progress({0: 100}, set(), 2, 10) == Progress(FAR_PAST_MS, FAR_PAST_MS)
    assert progress({0: 100, 1: 50}, set(), 2, 10) == Progress(40, 40)
    assert progress({0: 100, 1: 50}, {1}, 2, 10) == Progress(90, 90)
    assert progress({0: 100, 1: 50}, {0, 1}, 2, 10) == Progress(FAR_FUTURE_MS, 90)


def test_config_refuses_nonsense() -> None:
    with pytest.raises(ConfigError):
        WindowConfig(allowed_lateness_s=-1)
    assert WindowConfig.for_rules(7 * 86400, allowed_lateness_s=3600).retention_s == 7 * 86400 + 3600


def test_parked_records_live_the_retention_unless_told_shorter_and_never_less_than_the_lateness() -> None:
    assert WindowConfig.for_rules(7 * 86400, allowed_lateness_s=3600).parked_life_s == 7 * 86400 + 3600
    assert WindowConfig.for_rules(7 * 86400, allowed_lateness_s=3600, parked_ttl_s=86400).parked_life_s == 86400
    assert WindowConfig.for_rules(86400, allowed_lateness_s=3600, parked_ttl_s=30 * 86400).parked_life_s == 90000
    with pytest.raises(ConfigError, match="at least the allowed lateness"):
        WindowConfig.for_rules(7 * 86400, allowed_lateness_s=3600, parked_ttl_s=3599)


OTHER = EntityRef("recipient", "def456")


def step_wide(
    states: dict[EntityRef, EntityState],
    parked: Parked,
    batches: list[tuple[EntityRef, list[ParcelUpdate]]],
    parcels: list[ParcelUpdate],
    rules: list[Rule],
    at: Progress,
) -> list[RaisedAlert]:
    """One store call's work, as the memory store does it: the parcel-wide updates parked and
    applied to the entities that hold their parcels, then each entity's own updates."""
    stats = ApplyStats()
    raised: list[RaisedAlert] = []
    for entity, updates in park_parcels(parked, parcels, at.late_before, stats).items():
        state = states.setdefault(entity, EntityState())
        held = [u for u in updates if u.parcel_key in state.records]
        raised += apply_entity(state, entity, held, rules, BIG, at, parked=parked)[1]
    for entity, updates in batches:
        rest = park_updates(parked, entity, updates, at.late_before, stats)
        state = states.setdefault(entity, EntityState())
        raised += apply_entity(state, entity, rest, rules, BIG, at, parked=parked)[1]
    return raised


def _distinct(updates: list[ParcelUpdate]) -> list[ParcelUpdate]:
    """``updates`` with an event id of each content of its own, as a feed has: a redelivery
    repeats an event whole, and two events that differ have different ids. (The strategy draws
    ids from a few, and of two versions alike but for their mass, the first applied wins: an
    order the parcel-wide updates do not keep within a batch, as they are applied first.)"""
    return [
        msgspec.structs.replace(u, event_id=f"{u.event_id}|{u.mass_kg}|{u.weight_kg}|{u.cancelled}|{u.reasons}")
        for u in updates
    ]


@given(parcel_updates(), st.integers(1, 6), st.lists(st.booleans(), max_size=40))
@settings(max_examples=300, deadline=None)
def test_for_one_entity_parcel_wide_updates_give_the_records_of_giving_them_to_it(
    updates: list[ParcelUpdate], chunk: int, wide: list[bool]
) -> None:
    """An entity's record of a parcel folds in every parcel-wide update of the parcel, whether it
    came before the entity took the parcel or after: with one entity, the same live records as
    giving it every update, parked or held."""
    updates = _distinct(updates)
    plain, parked_plain = EntityState(), {}
    states: dict[EntityRef, EntityState] = {}
    parked: Parked = {}
    rules = [rule(24, 3.0, 1, 1.5)]
    seen_max: int | None = None
    for start in range(0, len(updates), chunk):
        part = updates[start : start + chunk]
        mine, parcels = split_parcel_wide(part, wide[start : start + chunk])
        at = single_partition_clock(seen_max)
        step(plain, parked_plain, part, rules, at)
        step_wide(states, parked, [(ENTITY, list(mine))], list(parcels), rules, at)
        seen_max = max([u.event_time_ms for u in part] + ([seen_max] if seen_max is not None else []))
    got = states.get(ENTITY, EntityState())
    assert live_sorted(got.records.items()) == live_sorted(plain.records.items())


@given(parcel_updates(), parcel_updates(), st.lists(st.booleans(), max_size=40), st.integers(1, 40))
@settings(max_examples=300, deadline=None)
def test_parcel_wide_updates_reach_every_entity_that_holds_or_takes_their_parcel(
    first: list[ParcelUpdate], second: list[ParcelUpdate], wide: list[bool], width_h: int
) -> None:
    """Two entities name the same parcels; the updates without mass go parcel-wide where ``wide``
    says. Each entity's windows are the oracle's: its record of a parcel is the fold of its own
    accepted updates and every accepted parcel-wide update of the parcel, in whatever order they came."""
    first, second = _distinct(first), _distinct(second)
    states: dict[EntityRef, EntityState] = {}
    parked: Parked = {}
    own: dict[EntityRef, list[tuple[ParcelUpdate, int]]] = {ENTITY: [], OTHER: []}
    shared: list[tuple[ParcelUpdate, int]] = []
    seen_max: int | None = None
    chunks = [(ENTITY, first[i : i + 4]) for i in range(0, len(first), 4)]
    chunks += [(OTHER, second[i : i + 4]) for i in range(0, len(second), 4)]
    chunks.sort(key=lambda c: c[1][0].event_time_ms)  # roughly in time, interleaved
    flags = iter(wide + [False] * (len(first) + len(second)))
    for entity, part in chunks:
        mine, parcels = split_parcel_wide(part, [next(flags) for _ in part])
        at = single_partition_clock(seen_max)
        step_wide(states, parked, [(entity, list(mine))], list(parcels), [rule(width_h)], at)
        own[entity] += [(u, at.late_before) for u in mine]
        shared += [(u, at.late_before) for u in parcels]
        seen_max = max([u.event_time_ms for u in part] + ([seen_max] if seen_max is not None else []))
    for entity in (ENTITY, OTHER):
        expected = oracle_parcels(own[entity], shared)
        live = live_sorted(states.get(entity, EntityState()).records.items())
        ends = {r.anchor_ms for _, r in live} | {p.anchor_ms for p in expected.values()}
        for end in ends:
            got = {k for k, r in live if end - width_h * HOUR < r.anchor_ms <= end}
            assert got == oracle_window(expected, end, width_h * HOUR), (entity, end)
            assert sum(r.mass_kg for k, r in live if k in got) == pytest.approx(sum(expected[k].mass_kg for k in got))


def test_a_parcel_wide_update_reaches_the_entity_that_holds_the_parcel_and_waits_for_one_that_takes_it() -> None:
    """A scale reading with no suspect mass, sent parcel-wide after a declaration with mass,
    retracts the parcel's mass in the entity that holds it; an entity that takes the parcel later
    (its own declaration with mass, older) finds the reading and does not count the parcel either."""
    states: dict[EntityRef, EntityState] = {}
    parked: Parked = {}
    at = Progress()
    declared = upd("SF:1", 1, 4.0, rank=1, event_id="declared")
    step_wide(states, parked, [(ENTITY, [declared])], [], [rule()], at)
    assert states[ENTITY].records["SF:1"].mass_kg == 4.0 and parked["SF:1"][ENTITY.tag] == ENTITY
    weighed = upd("SF:1", 3, 0.0, rank=2, event_id="weighed")
    step_wide(states, parked, [], [weighed], [rule()], at)
    assert states[ENTITY].records["SF:1"].mass_kg == 0.0
    assert isinstance(parked["SF:1"][PARCEL_WIDE], Record) and parked["SF:1"][PARCEL_WIDE].version_id == "weighed"
    step_wide(states, parked, [(OTHER, [declared])], [], [rule()], at)
    assert "SF:1" not in states[OTHER].records  # parked: not live, the reading outranks the declaration
    early = upd("SF:2", 5, 0.0, event_id="created")
    step_wide(states, parked, [], [early], [rule()], at)
    step_wide(states, parked, [(OTHER, [upd("SF:2", 6, 2.0, event_id="declared")])], [], [rule()], at)
    record = states[OTHER].records["SF:2"]
    assert (record.anchor_ms, record.mass_kg) == (T0 + 5 * HOUR, 2.0)  # anchored at the parcel-wide event
