"""Adapters: courier- and platform-specific records to canonical parcel events.

Each adapter turns one raw message into results: canonical records (dicts in the parcel-event
contract) or :class:`Rejected` with a reason; it never raises on bad input. ``split`` cuts a
recorded file into the messages a feed would have sent, for replay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.adapters import canonical, export_9610, waybill_csv
from streams.adapters.common import Rejected


@dataclass(frozen=True)
class Adapter:
    name: str
    topic_suffix: str  # parcels.<suffix>
    parse: Callable[[bytes], list[dict[str, Any] | Rejected]]
    split: Callable[[Path], Iterator[bytes]]


ADAPTERS: dict[str, Adapter] = {
    "canonical": Adapter("canonical", "canonical", canonical.parse, canonical.split),
    "waybill-csv": Adapter("waybill-csv", "raw.waybill-csv", waybill_csv.parse, waybill_csv.split),
    "export-9610": Adapter("export-9610", "raw.export-9610", export_9610.parse, export_9610.split),
}


def guess_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "waybill-csv"
    if suffix == ".xml":
        return "export-9610"
    return "canonical"


__all__ = ["ADAPTERS", "Adapter", "Rejected", "guess_format"]
