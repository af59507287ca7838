"""One batch through the core: score, link to entities, update windows, build alert documents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.alerts import alert_document
from detectors.clusters import ClusterEntry
from detectors.entities import EntityRef, Pseudonymizer
from detectors.events import ParcelEvent
from detectors.parcel_store import parcel_detail
from detectors.reference import Reference
from detectors.rules import RuleSet
from detectors.scoring import ParcelScore, score_batch
from detectors.store import ClockInput, WindowStore
from detectors.windows import (
    RANK_DECLARED,
    RANK_MEASURED,
    ApplyStats,
    EntityUpdates,
    ParcelUpdate,
    Progress,
    RaisedAlert,
    parcel_wide,
)


@dataclass(frozen=True, slots=True)
class Detector:
    """Everything a batch needs besides the store; built once at the edge from settings."""

    reference: Reference
    rules: RuleSet
    pseudonymizer: Pseudonymizer
    include_suspended: bool = False
    clear_labels: bool = False  # put clear identifiers in alerts (entity_label), where policy allows


@dataclass(slots=True)
class BatchOutcome:
    scores: list[ParcelScore]
    stats: ApplyStats
    raised: list[RaisedAlert]
    at: Progress  # the horizon and late bound the store judged with
    due: tuple[EntityRef, ...]  # still due beyond the store's limit: pass to the next call
    late: list[ParcelEvent] = field(default_factory=list)  # refused by the store: dead-letter them
    partly_late: frozenset[str] = frozenset()  # ids of late events a sharded store's other shards counted
    alerts: list[dict[str, Any]] = field(default_factory=list)
    parcel_details: list[dict[str, Any]] = field(default_factory=list)  # suspect parcels, for the analyst desk


def parcel_update(event: ParcelEvent, score: ParcelScore) -> ParcelUpdate:
    """What ``event``, scored, brings to the windows of each entity it names."""
    return ParcelUpdate(
        parcel_key=event.parcel_key,
        event_time_ms=event.event_time_ms,
        mass_kg=score.suspect_mass_kg,
        weight_kg=score.weight_kg,
        rank=RANK_MEASURED if event.measured_weight_kg is not None else RANK_DECLARED,
        event_id=event.event_id,
        cancelled=event.event_type == "cancelled",
        reasons=score.reasons,
    )


def entity_updates(
    events: Sequence[ParcelEvent],
    scores: Sequence[ParcelScore],
    pseudonymizer: Pseudonymizer,
    clear_labels: bool = False,
    windowed: frozenset[str] | None = None,
    parcels: list[ParcelUpdate] | None = None,
) -> tuple[list[EntityUpdates], dict[EntityRef, str], list[ClusterEntry], list[dict[str, Any]]]:
    """Group the batch's parcel updates by entity, keeping stream order within each entity.

    ``parcels``: where the updates that go parcel-wide (:func:`detectors.windows.parcel_wide`: no
    suspect mass, not a cancellation) go instead, once each, in stream order; their events name no
    entity and link nothing, and the store applies them to every entity that holds or takes their
    parcel (:func:`detectors.windows.park_parcels`). Nearly every event is one, and naming and
    keying its entities was the largest part of a worker's time. None: they go to their entities
    like the rest.

    ``windowed``: the entity types to group (default all). An entity type no rule judges needs no
    window: a phone or an account still links identities into clusters, and the cluster's window
    is what its rules judge. Windowing it anyway costs a record per parcel in Redis and in the
    script (a third of the updates with the default rules).

    Events with suspect mass (and cancellations) also link their sender's identifiers into
    clusters; an event without any identifier links nothing. Events with suspect mass also give
    the details an analyst reads (:mod:`detectors.parcel_store`).
    """
    grouped: dict[EntityRef, list[ParcelUpdate]] = {}
    labels: dict[EntityRef, str] = {}
    links: list[ClusterEntry] = []
    details: list[dict[str, Any]] = []
    for event, score in zip(events, scores, strict=True):
        update = parcel_update(event, score)
        if parcels is not None and parcel_wide(update):
            parcels.append(update)
            continue
        entities = pseudonymizer.entities(event)
        for entity, clear in entities:
            if windowed is not None and entity.entity_type not in windowed:
                continue
            grouped.setdefault(entity, []).append(update)
            labels[entity] = clear
        if update.mass_kg > 0 or update.cancelled:
            nodes = pseudonymizer.nodes(event, entities)
            if nodes:
                links.append(ClusterEntry(update, nodes))
        if update.mass_kg > 0:
            details.append(parcel_detail(event, score, entities, clear_labels))
    return (
        [EntityUpdates(entity, tuple(updates)) for entity, updates in grouped.items()],
        labels,
        links,
        details,
    )


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch scored and linked, ready for its store call: the part of a batch that needs no store."""

    events: Sequence[ParcelEvent]
    detector: Detector  # as it stood when the batch was prepared: rules change between batches only
    scores: list[ParcelScore]
    groups: list[EntityUpdates]
    labels: dict[EntityRef, str]
    links: list[ClusterEntry]
    details: list[dict[str, Any]]
    parcels: list[ParcelUpdate] = field(default_factory=list)  # the parcel-wide updates


def prepare_batch(events: Sequence[ParcelEvent], detector: Detector) -> PreparedBatch:
    scores = score_batch(events, detector.reference, include_suspended=detector.include_suspended)
    parcels: list[ParcelUpdate] = []
    groups, labels, links, details = entity_updates(
        events, scores, detector.pseudonymizer, detector.clear_labels, detector.rules.entity_types, parcels
    )
    return PreparedBatch(events, detector, scores, groups, labels, links, details, parcels)


async def apply_batch(
    prepared: PreparedBatch, store: WindowStore, clock: ClockInput, encoded: object = None
) -> BatchOutcome:
    """Window a prepared batch and judge the due entities, in one store call.

    The store refuses events older than the late bound it reads atomically; they come back in
    ``late``. The caller stores and publishes ``alerts``, then acknowledges them. ``encoded``:
    what ``store.prepare`` made of the batch's groups and links ahead of the call, if anything.
    """
    detector = prepared.detector
    result = await store.apply(prepared.groups, detector.rules, clock, prepared.links, encoded, prepared.parcels)
    thresholds = {rule.id: rule.threshold_kg for rule in detector.rules.rules}
    everywhere = result.refused - result.partly_late  # refused by every shard it went to
    refused = (
        {(e.parcel_key, e.event_time_ms) for e in prepared.events if e.event_id in everywhere} if everywhere else ()
    )
    alerts = [
        alert_document(
            alert,
            thresholds.get(alert.rule_id, 0.0),
            prepared.labels.get(alert.entity) if detector.clear_labels else None,
        )
        for alert in result.alerts
    ]
    return BatchOutcome(
        scores=prepared.scores,
        stats=result.stats,
        raised=result.alerts,
        at=result.at,
        due=result.due,
        late=[e for e in prepared.events if e.event_time_ms < result.at.late_before or e.event_id in result.refused],
        partly_late=result.partly_late,
        alerts=alerts,
        # an event some shards refused still counts in the others: its details are kept
        parcel_details=[
            d
            for d in prepared.details
            if d["event_time_ms"] >= result.at.late_before and (d["parcel_id"], d["event_time_ms"]) not in refused
        ],
    )


async def process_batch(
    events: Sequence[ParcelEvent], detector: Detector, store: WindowStore, clock: ClockInput
) -> BatchOutcome:
    """Score, link and window one batch: :func:`prepare_batch` then :func:`apply_batch`."""
    return await apply_batch(prepare_batch(events, detector), store, clock)
