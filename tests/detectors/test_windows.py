"""Window semantics against the brute-force oracle, and hand-drawn timelines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.entities import EntityRef
from detectors.errors import ConfigError
from detectors.rules import Rule
from detectors.windows import (
    EntityState,
    ParcelUpdate,
    WindowConfig,
    apply_entity,
    live_sorted,
)
from tests.detectors.strategies import HOUR, T0, parcel_updates
from tests.detectors.window_oracle import oracle_parcels, oracle_window

ENTITY = EntityRef("sender_phone", "abc123")
BIG = WindowConfig(allowed_lateness_s=6 * 3600, retention_s=10**7, max_parcels_per_entity=10**6)


def rule(window_h: int = 24, threshold: float = 5.0, min_parcels: int = 2, regrow: float = 2.0) -> Rule:
    return Rule("r1", "test rule", "sender_phone", window_h * 3600, threshold, min_parcels, "high", regrow)


def upd(
    key: str, hour: float, mass: float, rank: int = 1, event_id: str = "e", cancelled: bool = False
) -> ParcelUpdate:
    return ParcelUpdate(key, T0 + int(hour * HOUR), mass, mass + 1.0, rank, event_id, cancelled, ("DENSITY_HIGH",))


@given(parcel_updates(), st.integers(1, 40))
@settings(max_examples=300, deadline=None)
def test_window_contents_equal_the_oracle_at_every_end(updates: list[ParcelUpdate], width_h: int) -> None:
    state = EntityState()
    for chunk_start in range(0, len(updates), 5):
        apply_entity(state, ENTITY, updates[chunk_start : chunk_start + 5], [rule(width_h)], BIG)
    expected = oracle_parcels(updates, BIG.allowed_lateness_s * 1000)
    live = live_sorted(state.records.items())
    ends = {r.anchor_ms for _, r in live} | {p.anchor_ms for p in expected.values()}
    for end in ends:
        got = {k for k, r in live if end - width_h * HOUR < r.anchor_ms <= end}
        assert got == oracle_window(expected, end, width_h * HOUR)
        assert sum(state.records[k].mass_kg for k in got) == pytest.approx(sum(expected[k].mass_kg for k in got))


@given(parcel_updates(), st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_redelivering_any_event_changes_nothing(updates: list[ParcelUpdate], rnd: object) -> None:
    once, twice = EntityState(), EntityState()
    apply_entity(once, ENTITY, updates, [rule()], BIG)
    apply_entity(twice, ENTITY, updates, [rule()], BIG)
    apply_entity(twice, ENTITY, updates, [rule()], BIG)
    assert twice.records == once.records
    assert twice.episodes == once.episodes


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
    """With events in event-time order, episode 1 is raised at the oracle's first crossing end."""
    updates = [upd(f"p{i}", hour, mass) for i, (hour, mass) in enumerate(sorted(points))]
    r = rule(window_h=24, threshold=6.0, min_parcels=2, regrow=0)
    state = EntityState()
    raised = []
    for u in updates:
        _, pending = apply_entity(state, ENTITY, [u], [r], BIG)
        raised.extend(a for a in pending if a.alert_id not in {x.alert_id for x in raised})
    parcels = oracle_parcels(updates, BIG.allowed_lateness_s * 1000)
    first = None
    for end in sorted({p.anchor_ms for p in parcels.values()}):
        window = oracle_window(parcels, end, 24 * HOUR)
        if sum(parcels[k].mass_kg for k in window) >= 6.0 and len(window) >= 2:
            first = (end, window)
            break
    if first is None:
        assert raised == []
    else:
        assert len(raised) == 1
        assert raised[0].last_event_ms == first[0]
        assert {e.parcel_key for e in raised[0].evidence} == first[1]


def test_timeline_scale_reading_cancellation_and_lateness() -> None:
    """
    hour:   0     2     4          20
    a       D3 -- M6                       declared 3 kg, hub scale says 6 kg: a counts 6
    b             D2 ------ X              cancelled at hour 20: retracted
    c                                      event at hour -10 arrives after watermark 20: late (lateness 6 h)
    """
    state = EntityState()
    r = rule(window_h=24, threshold=100.0)
    apply_entity(state, ENTITY, [upd("a", 0, 3.0), upd("b", 2, 2.0)], [r], BIG)
    apply_entity(state, ENTITY, [upd("a", 4, 6.0, rank=2, event_id="scale")], [r], BIG)
    stats, _ = apply_entity(state, ENTITY, [upd("b", 20, 0.0, cancelled=True), upd("c", -10, 9.0)], [r], BIG)
    assert state.records["a"].mass_kg == 6.0 and state.records["a"].anchor_ms == T0
    assert state.records["b"].cancelled
    assert "c" not in state.records
    assert stats.counts["late"] == 1 and stats.counts["retracted"] == 1
    # A declaration arriving after the scale reading does not undo it.
    apply_entity(state, ENTITY, [upd("a", 5, 3.0, rank=1, event_id="late-decl")], [r], BIG)
    assert state.records["a"].mass_kg == 6.0


def test_episodes_regrow_and_alert_ids_are_stable() -> None:
    r = rule(window_h=1000, threshold=5.0, min_parcels=1, regrow=2.0)
    state = EntityState()
    _, first = apply_entity(state, ENTITY, [upd("a", 0, 6.0)], [r], BIG)
    _, still = apply_entity(state, ENTITY, [upd("b", 1, 5.0)], [r], BIG)
    _, grown = apply_entity(state, ENTITY, [upd("c", 2, 2.0)], [r], BIG)
    assert [a.episode for a in first] == [1]
    assert {a.alert_id for a in still} == {first[0].alert_id}
    assert sorted(a.episode for a in grown) == [1, 2]
    assert grown[-1].suspect_mass_kg == 13.0
    again = EntityState()
    _, replay = apply_entity(again, ENTITY, [upd("a", 0, 6.0)], [r], BIG)
    assert replay[0].alert_id == first[0].alert_id


def test_memory_per_entity_is_capped_and_old_records_pruned() -> None:
    config = WindowConfig(allowed_lateness_s=3600, retention_s=48 * 3600, max_parcels_per_entity=5)
    state = EntityState()
    stats, _ = apply_entity(state, ENTITY, [upd(f"p{i}", i, 1.0) for i in range(8)], [rule()], config)
    assert len(state.records) == 5 and stats.counts["evicted"] == 3
    stats, _ = apply_entity(state, ENTITY, [upd("late-ok", 100, 1.0)], [rule()], config)
    assert set(state.records) == {"late-ok"} and stats.counts["pruned"] == 5


def test_config_refuses_nonsense() -> None:
    with pytest.raises(ConfigError):
        WindowConfig(allowed_lateness_s=-1)
    assert WindowConfig.for_rules(7 * 86400, allowed_lateness_s=3600).retention_s == 7 * 86400 + 3600
