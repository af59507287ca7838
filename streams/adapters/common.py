"""Pieces the adapters share: rejections, China-time parsing, addresses, numbers."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

CHINA_TIME = timezone(timedelta(hours=8))
_ADDRESS = re.compile(
    r"^(?P<province>.+?(?:省|自治区|特别行政区)|北京市|上海市|天津市|重庆市)?"
    r"(?P<city>.+?(?:市|自治州|地区|盟))?"
    r"(?P<district>.+?(?:区|县|旗))?"
    r"(?P<street>.*)$"
)


@dataclass(frozen=True)
class Rejected:
    """A record the adapter could not turn into an event: a dead letter."""

    reason: str  # closed set: safe as a metric label
    detail: str
    record_no: int | None = None
    raw: bytes | None = None


class FieldError(ValueError):
    """One field of one record is unusable; ``parse`` turns it into a :class:`Rejected`."""


def china_time(text: str, fmt: str) -> str:
    """A local China-time stamp written without offset, as RFC 3339 with +08:00."""
    try:
        return datetime.strptime(text.strip(), fmt).replace(tzinfo=CHINA_TIME).isoformat()
    except ValueError:
        raise FieldError(f"time {text[:40]!r} does not match {fmt}") from None


def number(text: str | None, field: str, *, required: bool = False) -> float | None:
    if text is None or not text.strip():
        if required:
            raise FieldError(f"{field} is empty")
        return None
    try:
        value = float(text.strip().replace(",", ""))
    except ValueError:
        raise FieldError(f"{field} {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise FieldError(f"{field} {text[:40]!r} is not finite")
    return value


def chinese_address(text: str | None, country: str = "CN") -> dict[str, Any] | None:
    """Split a one-line Chinese address into the contract's fields (street keeps the rest)."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    match = _ADDRESS.match(text)
    if match is None:  # pragma: no cover - the pattern matches every string
        return {"country": country, "street": text}
    parts = {k: (v or None) for k, v in match.groupdict().items()}
    if not parts["street"]:
        parts["street"] = text
    return {"country": country, **parts}
