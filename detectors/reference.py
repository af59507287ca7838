"""Reference data (controlled material, cover goods, cover words, scorer parameters) as frozen records."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from detectors.errors import ConfigError
from detectors.text import squeeze


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
    value_cny_per_kg: float = 0.0  # typical value, for the economics when nothing is declared; 0 = unknown

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
class Economics:
    """What sending one kg costs, by channel, and what currencies are worth, in CNY."""

    uneconomic_ratio: float
    confidence: float
    shipping_cny_per_kg: dict[str, float]
    cny_per_unit: dict[str, float]

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ConfigError("economics.confidence must be within [0, 1]")
        if self.uneconomic_ratio <= 0:
            raise ConfigError("economics.uneconomic_ratio must be positive")

    def shipping_cost(self, channel: str, international: bool) -> float | None:
        if international and channel != "cross_border_ecommerce":
            return self.shipping_cny_per_kg.get(f"international_{channel}")
        return self.shipping_cny_per_kg.get(channel)


# Compared and hashed by identity: scoring memoizes what a description says per reference
# (detectors/scoring.py), and a reference is loaded once and never changed.
@dataclass(frozen=True, slots=True, eq=False)
class Reference:
    version: str
    controlled: tuple[Controlled, ...]
    cover_goods: tuple[CoverGood, ...]
    cover_words: tuple[str, ...]
    scoring: ScoringParams
    dense_goods: tuple[str, ...] = ()
    route_risk: dict[str, float] = field(default_factory=dict)
    economics: Economics | None = None

    def active_controlled(self, include_suspended: bool) -> tuple[Controlled, ...]:
        return tuple(c for c in self.controlled if include_suspended or not c.suspended)


def _words(values: list[str]) -> tuple[str, ...]:
    return tuple(squeeze(word) for word in values)


def _route_risk(countries: dict[str, Any]) -> dict[str, float]:
    risk = {str(code).upper(): float(value) for code, value in countries.items()}
    bad = sorted(code for code, value in risk.items() if not 0.0 <= value <= 1.0)
    if bad:
        raise ConfigError(f"route_risk.countries: {', '.join(bad)} must be within [0, 1]")
    return risk


def _economics(entry: dict[str, Any]) -> Economics:
    return Economics(
        uneconomic_ratio=float(entry["uneconomic_ratio"]),
        confidence=float(entry["confidence"]),
        shipping_cny_per_kg={str(k): float(v) for k, v in entry["shipping_cny_per_kg"].items()},
        cny_per_unit={str(k).upper(): float(v) for k, v in entry["cny_per_unit"].items()},
    )


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
                    value_cny_per_kg=float(entry.get("value_cny_per_kg", 0.0)),
                )
                for entry in data["cover_goods"]
            ),
            cover_words=_words(data["cover_words"]["words"]),
            scoring=ScoringParams(**{k: float(v) for k, v in data["scoring"].items() if k != "source"}),
            dense_goods=_words(data.get("dense_goods", {}).get("words", [])),
            route_risk=_route_risk(data.get("route_risk", {}).get("countries", {})),
            economics=_economics(data["economics"]) if "economics" in data else None,
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
