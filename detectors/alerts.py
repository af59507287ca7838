"""Alert documents in the published form (contracts/alert.schema.json), with plain-word reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from detectors.scoring import REASON_TEXT
from detectors.windows import RaisedAlert


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        days = seconds // 86400
        return f"{days} day" + ("s" if days != 1 else "")
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds} s"


def alert_document(raised: RaisedAlert, threshold_kg: float, label: str | None = None) -> dict[str, Any]:
    reasons = [
        f"{raised.parcel_count} parcels linked to one {raised.entity.entity_type.replace('_', ' ')} carry an "
        f"estimated {raised.suspect_mass_kg:.1f} kg of hidden strategic material within {_duration(raised.window_s)}"
        f" (rule threshold {threshold_kg:g} kg)"
    ]
    reasons += [
        f"{count} of them: {REASON_TEXT.get(code, code)} [{code}]"
        for code, count in sorted(raised.reason_counts, key=lambda rc: (-rc[1], rc[0]))
    ]
    if raised.episode > 1:
        reasons.append(f"episode {raised.episode}: the entity kept growing after its earlier alert")
    return {
        "schema_version": 1,
        "alert_id": raised.alert_id,
        "rule": raised.rule_id,
        "entity_type": raised.entity.entity_type,
        "entity_key": raised.entity.key,
        "entity_label": label,
        "window_s": raised.window_s,
        "threshold_kg": threshold_kg,
        "suspect_mass_kg": raised.suspect_mass_kg,
        "total_weight_kg": raised.total_weight_kg,
        "parcel_count": raised.parcel_count,
        "parcel_ids": [e.parcel_key for e in raised.evidence],
        "first_event_time": iso(raised.first_event_ms),
        "last_event_time": iso(raised.last_event_ms),
        "severity": raised.severity,
        "episode": raised.episode,
        "reasons": reasons,
        "evidence": [
            {
                "parcel_id": e.parcel_key,
                "event_time": iso(e.anchor_ms),
                "suspect_mass_kg": e.mass_kg,
                "weight_kg": e.weight_kg,
                "reasons": list(e.reasons),
            }
            for e in raised.evidence
        ],
    }
