"""Brute-force oracle for the window semantics of detectors.windows, recomputed from scratch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detectors.windows import ParcelUpdate


@dataclass(frozen=True)
class OracleParcel:
    anchor_ms: int
    mass_kg: float
    cancelled: bool


def oracle_parcels(
    delivered: Sequence[tuple[ParcelUpdate, int]], parcel_wide: Sequence[tuple[ParcelUpdate, int]] = ()
) -> dict[str, OracleParcel]:
    """Which parcels an entity holds after ``delivered`` (update, late-before bound at its delivery).

    ``parcel_wide``: the parcel-wide updates (no mass, no cancellation), delivered alike: each folds
    into the record of its parcel in every entity that has one, in whatever order they came.
    """
    accepted: dict[str, list[ParcelUpdate]] = {}
    for u, late_before in delivered:
        if u.event_time_ms < late_before:
            continue
        history = accepted.get(u.parcel_key)
        if history is not None:
            if any(h.cancelled for h in history):
                continue
            history.append(u)
        else:
            accepted[u.parcel_key] = [u]
    for u, late_before in parcel_wide:
        history = accepted.get(u.parcel_key)
        if history is not None and u.event_time_ms >= late_before and not any(h.cancelled for h in history):
            history.append(u)
    result = {}
    for key, history in accepted.items():
        best = max(history, key=lambda h: (h.rank, h.event_time_ms, h.event_id))
        cancelled = any(h.cancelled for h in history)
        result[key] = OracleParcel(
            anchor_ms=min(h.event_time_ms for h in history),
            mass_kg=0.0 if cancelled else best.mass_kg,
            cancelled=cancelled,
        )
    return result


def oracle_window(parcels: dict[str, OracleParcel], end_ms: int, width_ms: int) -> set[str]:
    return {
        key
        for key, p in parcels.items()
        if not p.cancelled and p.mass_kg > 0 and end_ms - width_ms < p.anchor_ms <= end_ms
    }
