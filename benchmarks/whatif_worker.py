"""Not the product: a ``parcelwatch worker`` that stores nothing for events without suspect mass.

    python benchmarks/whatif_worker.py      (as ``parcelwatch worker``, with the same settings)

The throughput ladder's end-to-end what-if (benchmarks/throughput.py). An event that has no suspect
mass and is not a cancellation is parsed, scored and acknowledged, and not stored at all, where the
product sends it parcel-wide (one row, no entity: docs/windows.md, "Parked records"): the
difference is what those rows cost a worker. Its alerts may differ from the product's: a parcel
whose first events have no mass is anchored at its first event with mass.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from detectors import pipeline
from detectors.events import ParcelEvent
from detectors.scoring import ParcelScore
from detectors.windows import parcel_wide
from streams.cli import main

_entity_updates = pipeline.entity_updates


def counted_only(events: Sequence[ParcelEvent], scores: Sequence[ParcelScore], *args: Any, **kwargs: Any) -> Any:
    """``entity_updates`` over the events that do not go parcel-wide (suspect mass, cancellations) only."""
    kept = [
        (event, score)
        for event, score in zip(events, scores, strict=True)
        if not parcel_wide(pipeline.parcel_update(event, score))
    ]
    return _entity_updates([event for event, _ in kept], [score for _, score in kept], *args, **kwargs)


if __name__ == "__main__":
    # prepare_batch looks entity_updates up among the module's names at each call; were it to hold
    # it under another name, the what-if would quietly measure the product.
    if "entity_updates" not in pipeline.prepare_batch.__code__.co_names:
        sys.exit("whatif_worker.py: detectors.pipeline.prepare_batch no longer calls entity_updates by name")
    pipeline.entity_updates = counted_only
    sys.exit(main(["worker"]))
