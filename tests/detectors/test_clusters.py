"""Identity clusters: a ring is seen as one, and its alerts depend on neither batching nor workers."""

from __future__ import annotations

import asyncio
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.clusters import ClusterEntry
from detectors.entities import EntityRef
from detectors.rules import Rule, RuleSet
from detectors.store import ClockInput, PartitionReport
from detectors.store_memory import MemoryWindowStore
from detectors.windows import ParcelUpdate, RaisedAlert, WindowConfig

HOUR = 3_600_000
T0 = 1_767_225_600_000
LATENESS_S = 48 * 3600
CONFIG = WindowConfig(allowed_lateness_s=LATENESS_S, retention_s=10 * 86400)
RULES = RuleSet("t", (Rule("cl_week", "cluster, a week", "cluster", 7 * 86400, 10.0, 3, "high", 1.5),))
NODES = [f"sender_phone:p{i}" for i in range(5)] + [f"sender_room:r{i}" for i in range(3)]


def link(i: int, hour: int, mass: float, *nodes: str, rank: int = 1) -> ClusterEntry:
    return ClusterEntry(ParcelUpdate(f"SF:{i:03d}", T0 + hour * HOUR, mass, mass + 1, rank, f"e{i}:{rank}"), nodes)


def run(partitions: list[list[ClusterEntry]], order: list[int], chunk: int, limit: int) -> list[RaisedAlert]:
    """Deliver partition heads in ``order``, ``chunk`` at a time, then flush with every partition idle."""
    store = MemoryWindowStore(CONFIG, cluster_limit=limit)
    maxima: dict[int, int] = {}
    cursors = [0] * len(partitions)
    due: tuple[EntityRef, ...] = ()
    alerts: dict[str, RaisedAlert] = {}

    async def go() -> None:
        nonlocal due
        for step in [*order, *[-1] * 200]:
            links: list[ClusterEntry] = []
            if step >= 0:
                links = partitions[step][cursors[step] : cursors[step] + chunk]
                cursors[step] += len(links)
                if links:
                    times = [e.update.event_time_ms for e in links]
                    maxima[step] = max([maxima.get(step, times[0]), *times])
            reports = tuple(PartitionReport(p, maxima.get(p), step < 0) for p in range(len(partitions)))
            result = await store.apply([], RULES, ClockInput(reports, len(partitions), LATENESS_S, due), links)
            due = result.due
            alerts.update({a.alert_id: a for a in result.alerts})
            await store.acknowledge(result.alerts)
            if step < 0 and not store.pending and not due:
                break

    asyncio.run(go())
    return sorted(alerts.values(), key=lambda a: a.alert_id)


def test_a_ring_that_shares_phones_and_rooms_is_one_cluster_and_one_alert() -> None:
    # Four light senders, none above 10 kg alone; each shares a phone or a room with the next.
    ring = [
        link(1, 0, 3.0, "sender_phone:p0", "sender_room:r0"),
        link(2, 5, 3.0, "sender_phone:p1", "sender_room:r0"),
        link(3, 10, 3.0, "sender_phone:p1", "sender_room:r1"),
        link(4, 20, 3.0, "sender_phone:p2", "sender_room:r1"),
        link(5, 30, 2.0, "sender_phone:p9"),  # a stranger: never joins
    ]
    [alert] = run([ring], [0, 0, 0], 2, 10)
    assert alert.entity.entity_type == "cluster" and alert.suspect_mass_kg == 12.0
    assert {e.parcel_key for e in alert.evidence} == {"SF:001", "SF:002", "SF:003", "SF:004"}


def test_a_scale_reading_changes_only_the_windows_ending_after_it() -> None:
    # The end at hour 10 crosses on the declared masses (4+4+4); a later reading lowers parcel 1.
    parcels = [
        link(1, 0, 4.0, "sender_phone:p0"),
        link(2, 5, 4.0, "sender_phone:p0"),
        link(3, 10, 4.0, "sender_phone:p0"),
        ClusterEntry(ParcelUpdate("SF:001", T0 + 12 * HOUR, 0.5, 1.0, 2, "e1:2"), ("sender_phone:p0",)),
    ]
    [alert] = run([parcels], [0, 0], 2, 1)
    assert (alert.last_event_ms, alert.suspect_mass_kg) == (T0 + 10 * HOUR, 12.0)


@given(
    st.lists(
        st.tuples(st.integers(0, 200), st.sampled_from([0.5, 2.0, 4.0]), st.sets(st.sampled_from(NODES), min_size=1)),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 3),
    st.randoms(use_true_random=False),
)
@settings(max_examples=150, deadline=None)
def test_cluster_alerts_do_not_depend_on_batching_or_interleaving(
    points: list[tuple[int, float, set[str]]], n_partitions: int, rnd: random.Random
) -> None:
    parts: list[list[ClusterEntry]] = [[] for _ in range(n_partitions)]
    for i, (hour, mass, nodes) in enumerate(points):
        parts[rnd.randrange(n_partitions)].append(link(i, hour, mass, *sorted(nodes)))
    for part in parts:
        part.sort(key=lambda e: e.update.event_time_ms)
    results = []
    for _ in range(2):
        order = [p for p, part in enumerate(parts) for _ in range(len(part) + 1)]
        rnd.shuffle(order)
        results.append(run(parts, order, rnd.randrange(1, 4), rnd.randrange(1, 6)))
    assert results[0] == results[1]
