"""Identity clusters: senders that share a phone, an account or a room, watched as one.

What a cluster window holds (docs/windows.md, "Clusters", says the same at more length):

* Every event whose parcel scores suspect mass above zero, and every cancellation, *links* the
  sender's strong identifiers (:data:`detectors.entities.NODE_TYPES`: phone, account, room).
  Identifiers linked directly or through others form one cluster (union-find); the cluster's key
  is its root identifier, ``type:pseudonym``. A ring of thirty light senders that share a few
  phones and rooms is one cluster.
* Cluster windows are a fold over *final* events in event-time order (ties by the entry's bytes):
  an entry waits in the pending set until the check horizon passes it (no earlier event can
  arrive any more), and each store call takes at most ``cluster_limit`` of them, oldest first.
  Before an entry at time ``t`` changes a cluster or joins two, their window ends before ``t``
  are judged. So the window ending at ``e`` holds exactly the parcels linked to the cluster by
  events up to ``e``, each at its best-known mass as of ``e`` (a later scale reading changes only
  windows ending after it), and the alerts depend neither on batching nor on workers.
* Joining: the cluster with more records absorbs the other (tie: the smaller key). A parcel in
  both keeps the newer version, the earlier anchor, and stays retracted if either retracted it.
  Per rule the higher episode (with its mass) and the later suppression are kept. Alerts raised
  but not yet acknowledged stay with the cluster that raised them.
* An event scored zero enters no cluster: most parcels are clean, and following each of them
  would cost a pending entry per event. A parcel whose score later falls to zero keeps its
  earlier mass in its cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from detectors.windows import FAR_PAST_MS, EntityState, ParcelUpdate, fold_records, update_row

CLUSTER = "cluster"


@dataclass(frozen=True, slots=True)
class ClusterEntry:
    """One event as the cluster stage sees it: its update and the sender's identifiers, sorted."""

    update: ParcelUpdate
    nodes: tuple[str, ...]

    def encode(self) -> bytes:
        """The pending-set member; a redelivered event encodes to the same bytes."""
        return orjson.dumps([*update_row(self.update), list(self.nodes)])

    @staticmethod
    def decode(member: bytes) -> ClusterEntry:
        parcel, t, mass, weight, rank, event_id, cancelled, reasons, nodes = orjson.loads(member)
        update = ParcelUpdate(
            parcel, int(t), float(mass), float(weight), int(rank), event_id, bool(cancelled),
            tuple(filter(None, reasons.split(","))),
        )  # fmt: skip
        return ClusterEntry(update, tuple(nodes))


def survivor(a: tuple[str, int], b: tuple[str, int]) -> str:
    """Of two roots with their record counts, the one that absorbs the other."""
    (key_a, n_a), (key_b, n_b) = a, b
    if n_a != n_b:
        return key_a if n_a > n_b else key_b
    return key_a if key_a.encode() < key_b.encode() else key_b


def merge_into(into: EntityState, absorbed: EntityState) -> EntityState:
    """Join ``absorbed`` into ``into`` (both judged up to the joining time).

    Returns what is left of the absorbed cluster: its alerts not yet acknowledged.
    """
    for key, rec in absorbed.records.items():
        mine = into.records.get(key)
        into.records[key] = rec if mine is None else fold_records(mine, rec)
    if absorbed.watermark_ms is not None:
        into.watermark_ms = max(into.watermark_ms or absorbed.watermark_ms, absorbed.watermark_ms)
    for rule, episode in absorbed.episodes.items():
        mine_ep = into.episodes.get(rule, 0)
        theirs = (episode, absorbed.last_alert_mass[rule])
        if theirs > (mine_ep, into.last_alert_mass.get(rule, 0.0)):
            into.episodes[rule], into.last_alert_mass[rule] = theirs
    for rule, until in absorbed.suppressed_until.items():
        into.suppressed_until[rule] = max(into.suppressed_until.get(rule, FAR_PAST_MS), until)
    froms = [x for x in (into.check_from, absorbed.check_from) if x is not None]
    tos = [x for x in (into.check_to, absorbed.check_to) if x is not None]
    into.check_from = min(froms) if froms else None
    into.check_to = max(tos) if tos else None
    return EntityState(pending=absorbed.pending, claimed_ms=absorbed.claimed_ms)
