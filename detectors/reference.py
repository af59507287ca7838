"""Reference data (controlled material, cover goods, cover words, scorer parameters) as frozen records."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from detectors.errors import ConfigError
from detectors.text import fold


@dataclass(frozen=True, slots=True)
class Controlled:
    symbol: str
    words: tuple[str, ...]
    hs_prefixes: tuple[str, ...]
    suspended: bool


@dataclass(frozen=True, slots=True)
class CoverGood:
    id: str
    words: tuple[str, ...]
    tare_kg: float
    content_kg_per_ml: float
    unit_volume_ml: float
    unit_weight_kg: float
    packaging_kg: float

    def honest_weight_kg(self, containers: float, unit_volume_ml: float) -> float:
        """What ``containers`` of this good weigh with their honest content (packaging excluded)."""
        if self.unit_weight_kg > 0:
            return containers * self.unit_weight_kg
        return containers * (self.tare_kg + unit_volume_ml * self.content_kg_per_ml)


@dataclass(frozen=True, slots=True)
class ScoringParams:
    cover_overweight_ratio: float
    cover_min_excess_kg: float
    cover_confidence: float
    density_low: float
    density_high: float
    density_max_confidence: float
    underdeclared_ratio: float
    underdeclared_min_kg: float
    underdeclared_confidence: float
    cover_word_confidence: float
    controlled_confidence: float

    def __post_init__(self) -> None:
        for name in (
            "cover_confidence",
            "density_max_confidence",
            "underdeclared_confidence",
            "cover_word_confidence",
            "controlled_confidence",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"scoring.{name} must be within [0, 1]")
        if self.density_high <= self.density_low:
            raise ConfigError("scoring.density_high must exceed scoring.density_low")


@dataclass(frozen=True, slots=True)
class Reference:
    version: str
    controlled: tuple[Controlled, ...]
    cover_goods: tuple[CoverGood, ...]
    cover_words: tuple[str, ...]
    scoring: ScoringParams

    def active_controlled(self, include_suspended: bool) -> tuple[Controlled, ...]:
        return tuple(c for c in self.controlled if include_suspended or not c.suspended)


def _words(values: list[str]) -> tuple[str, ...]:
    return tuple(fold(word) for word in values)


def parse_reference(data: dict[str, Any], where: str) -> Reference:
    try:
        return Reference(
            version=str(data["version"]),
            controlled=tuple(
                Controlled(
                    symbol=entry["symbol"],
                    words=_words(entry["words"]),
                    hs_prefixes=tuple(entry.get("hs_prefixes", ())),
                    suspended=bool(entry.get("suspended", False)),
                )
                for entry in data["controlled"]
            ),
            cover_goods=tuple(
                CoverGood(
                    id=entry["id"],
                    words=_words(entry["words"]),
                    tare_kg=float(entry.get("tare_kg", 0.0)),
                    content_kg_per_ml=float(entry.get("content_kg_per_ml", 0.0)),
                    unit_volume_ml=float(entry.get("unit_volume_ml", 0.0)),
                    unit_weight_kg=float(entry.get("unit_weight_kg", 0.0)),
                    packaging_kg=float(entry.get("packaging_kg", 0.0)),
                )
                for entry in data["cover_goods"]
            ),
            cover_words=_words(data["cover_words"]["words"]),
            scoring=ScoringParams(**{k: float(v) for k, v in data["scoring"].items() if k != "source"}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: bad reference data: {exc!r}") from None


def load_reference(path: Path | None = None) -> Reference:
    """Load ``path``, or the reference data shipped with the package."""
    if path is None:
        text = resources.files("detectors").joinpath("data/reference.toml").read_text(encoding="utf-8")
        where = "detectors/data/reference.toml"
    else:
        text = path.read_text(encoding="utf-8")
        where = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return parse_reference(data, where)
