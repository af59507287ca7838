"""Container counts and volumes read out of declared goods descriptions.

Clerks write the same case of water as ``矿泉水 550ml*24瓶``, ``550ML×24``, ``24 bottles x 500 ml``
``农夫山泉1.5L*12`` or ``Spring water 12 x 1500 ml``; these helpers read the count and the unit volume out of such text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from detectors.text import fold

_VOLUME = re.compile(r"(\d+(?:\.\d+)?)\s*(ml|毫升|l|升)(?![a-z])")
_TIMES_COUNT = re.compile(r"[*x×]\s*(\d{1,4})(?![\d.])(?!\s*(?:ml|毫升|l|升|g|kg|克))")
_COUNT_TIMES_VOLUME = re.compile(r"(\d{1,4})\s*[*x×]\s*\d+(?:\.\d+)?\s*(?:ml|毫升|l|升)(?![a-z])")
_COUNT_UNIT = re.compile(r"(\d{1,4})\s*(?:瓶|罐|支|盒|个|pcs|bottles?|jars?|件)")
_CASE_UNITS = frozenset({"箱", "case", "cases", "carton", "cartons", "ctn", "件", "pack"})
_CONTAINER_UNITS = frozenset(
    {"瓶", "罐", "支", "个", "盒", "pcs", "pc", "piece", "pieces", "bottle", "bottles", "jar", "jars", "只", "具"}
)


@dataclass(frozen=True, slots=True)
class Containers:
    count: float
    unit_volume_ml: float | None


def unit_volume_ml(description: str) -> float | None:
    match = _VOLUME.search(fold(description))
    if match is None:
        return None
    amount = float(match.group(1))
    return amount * 1000.0 if match.group(2) in ("l", "升") else amount


def count_in_description(description: str) -> int | None:
    text = fold(description)
    match = _COUNT_UNIT.search(text) or _TIMES_COUNT.search(text) or _COUNT_TIMES_VOLUME.search(text)
    return int(match.group(1)) if match else None


def containers(description: str, quantity: float, unit: str | None, volume_ml: float | None) -> Containers:
    """How many containers an item line declares, and how large each is.

    The unit decides how the quantity reads: containers (瓶, pcs) are counted as they are; cases
    (箱, carton) are multiplied by the per-case count in the description; with no unit the count
    written in the description wins over a quantity of 1.
    """
    per_case = count_in_description(description)
    unit_folded = fold(unit) if unit else ""
    if unit_folded in _CONTAINER_UNITS:
        count = quantity
    elif unit_folded in _CASE_UNITS:
        count = quantity * (per_case or 1)
    elif per_case is not None and quantity <= 1:
        count = float(per_case)
    else:
        count = quantity
    return Containers(count=count, unit_volume_ml=volume_ml or unit_volume_ml(description))
