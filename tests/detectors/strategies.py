"""Hypothesis strategies for parcel updates on a small timeline (so that windows overlap)."""

from __future__ import annotations

from hypothesis import strategies as st

from detectors.windows import ParcelUpdate

HOUR = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@st.composite
def parcel_updates(draw: st.DrawFn, max_parcels: int = 12, max_size: int = 40) -> list[ParcelUpdate]:
    keys = [f"SF:{i:04d}" for i in range(draw(st.integers(1, max_parcels)))]
    size = draw(st.integers(1, max_size))
    updates = []
    for n in range(size):
        cancelled = draw(st.booleans().map(lambda b: b and draw(st.integers(0, 9)) == 0))
        parcel_key = draw(st.sampled_from(keys))
        waybill = parcel_key.split(":", 1)[1]
        event_ids = ["e1", "e2", "é3", "e\n4 1:*|", f"e{n}", f"{waybill}:e{n % 3}", f"SF:{waybill}:{waybill}"]
        event_ids += [f"\x01{waybill}", "\x02e", f"{keys[0]}|{n % 2}"]
        updates.append(
            ParcelUpdate(
                parcel_key=parcel_key,
                event_time_ms=T0 + draw(st.integers(0, 96)) * HOUR,
                mass_kg=draw(st.sampled_from([0.0, 0.0, 0.5, 1.25, 3.0, 7.5])),
                weight_kg=draw(st.sampled_from([1.0, 2.5, 12.0])),
                rank=draw(st.sampled_from([1, 2])),
                # any text, often naming its waybill (couriers' ids do): the stores encode it
                event_id=draw(st.sampled_from(event_ids)),
                cancelled=cancelled,
                reasons=draw(st.sampled_from([(), ("DENSITY_HIGH",), ("COVER_GOODS_OVERWEIGHT", "DENSITY_HIGH")])),
            )
        )
    return updates
