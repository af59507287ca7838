"""Canonical parcel events as JSON, one per message (JSON lines in recorded files)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from detectors.errors import InvalidEvent
from detectors.validation import decode
from streams.adapters.common import Rejected


def parse(raw: bytes) -> list[dict[str, Any] | Rejected]:
    try:
        return [decode(raw)]
    except InvalidEvent as exc:
        return [Rejected(exc.reason, exc.detail, raw=raw)]


def split(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        for line in handle:
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield line
