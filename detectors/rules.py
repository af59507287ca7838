"""Declarative alert rules: data with a description each, validated on construction."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from detectors.entities import ENTITY_TYPES
from detectors.errors import ConfigError

SEVERITIES: Final = ("low", "medium", "high", "critical")
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def parse_duration(text: str | int, field: str) -> int:
    """``"7d"``, ``"12h"``, ``"90m"``, ``"30s"`` or a number of seconds, to seconds."""
    if isinstance(text, int) and not isinstance(text, bool):
        seconds = text
    else:
        match = _DURATION.match(str(text).strip())
        if match is None:
            raise ConfigError(f"{field}: {text!r} is not a duration like 7d, 12h, 90m or 30s")
        seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds <= 0:
        raise ConfigError(f"{field}: a duration must be positive")
    return seconds


@dataclass(frozen=True, slots=True)
class Rule:
    """Alert when an entity's suspect mass within ``window_s`` reaches ``threshold_kg``.

    ``regrow_factor`` re-raises an already-alerted entity as a new episode when its window mass
    reaches the mass of the last alert times the factor (0 disables re-raising).
    """

    id: str
    description: str
    entity_type: str
    window_s: int
    threshold_kg: float
    min_parcels: int
    severity: str
    regrow_factor: float = 2.0

    def __post_init__(self) -> None:
        where = f"rule {self.id!r}"
        if not _RULE_ID.match(self.id):
            raise ConfigError(f"{where}: id must be lower-case letters, digits, '_', '.', '-' (max 64)")
        if self.entity_type not in ENTITY_TYPES:
            raise ConfigError(f"{where}: entity_type {self.entity_type!r} is not one of {', '.join(ENTITY_TYPES)}")
        if not self.threshold_kg > 0:
            raise ConfigError(f"{where}: threshold_kg must be positive")
        if self.min_parcels < 1:
            raise ConfigError(f"{where}: min_parcels must be at least 1")
        if self.severity not in SEVERITIES:
            raise ConfigError(f"{where}: severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")
        if self.regrow_factor != 0 and self.regrow_factor <= 1:
            raise ConfigError(f"{where}: regrow_factor must be 0 (never re-raise) or above 1")
        if not self.description.strip():
            raise ConfigError(f"{where}: description must say what the rule catches")


@dataclass(frozen=True, slots=True)
class RuleSet:
    version: str
    rules: tuple[Rule, ...]

    def for_entity(self, entity_type: str) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.entity_type == entity_type)

    @property
    def entity_types(self) -> frozenset[str]:
        """The entity types some rule judges: only those are windowed."""
        return frozenset(rule.entity_type for rule in self.rules)

    @property
    def longest_window_s(self) -> int:
        return max((rule.window_s for rule in self.rules), default=0)


_RULE_FIELDS = frozenset(
    {"id", "description", "entity_type", "window", "threshold_kg", "min_parcels", "severity", "regrow_factor"}
)


def parse_rules(data: dict[str, Any], where: str) -> RuleSet:
    """Build a :class:`RuleSet` from decoded TOML/JSON, with errors that name the rule and field."""
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise ConfigError(f"{where}: 'version' (a non-empty string) is required")
    entries = data.get("rule")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: at least one [[rule]] table is required")
    rules: list[Rule] = []
    for index, entry in enumerate(entries):
        label = f"{where}: rule #{index + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{label}: must be a table")
        unknown = set(entry) - _RULE_FIELDS
        if unknown:
            raise ConfigError(f"{label}: unknown field(s) {', '.join(sorted(unknown))}")
        missing = {"id", "description", "entity_type", "window", "threshold_kg", "severity"} - set(entry)
        if missing:
            raise ConfigError(f"{label}: missing field(s) {', '.join(sorted(missing))}")
        try:
            rules.append(
                Rule(
                    id=str(entry["id"]),
                    description=str(entry["description"]),
                    entity_type=str(entry["entity_type"]),
                    window_s=parse_duration(entry["window"], f"{label}.window"),
                    threshold_kg=float(entry["threshold_kg"]),
                    min_parcels=int(entry.get("min_parcels", 1)),
                    severity=str(entry["severity"]),
                    regrow_factor=float(entry.get("regrow_factor", 2.0)),
                )
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{label}: {exc}") from None
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    ids = [rule.id for rule in rules]
    duplicated = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
    if duplicated:
        raise ConfigError(f"{where}: duplicated rule id(s) {', '.join(duplicated)}")
    return RuleSet(version=version, rules=tuple(rules))


def parse_rules_text(text: str, where: str) -> RuleSet:
    """A rules document (TOML) as read from a file or a control message; ``where`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    return parse_rules(data, where)


def load_rules(path: Path) -> RuleSet:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read rules file {path}: {exc.strerror}") from None
    return parse_rules_text(text, str(path))
