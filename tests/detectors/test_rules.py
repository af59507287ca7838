from __future__ import annotations

from pathlib import Path

import pytest

from detectors.errors import ConfigError
from detectors.rules import load_rules, parse_duration, parse_rules

RULE = {
    "id": "r1",
    "description": "d",
    "entity_type": "recipient",
    "window": "7d",
    "threshold_kg": 10,
    "severity": "high",
}


def test_the_shipped_rules_load() -> None:
    rules = load_rules(Path(__file__).parents[2] / "detectors" / "data" / "rules.toml")
    assert rules.longest_window_s == 60 * 86400
    assert {rule.window_s // 86400 for rule in rules.rules} == {1, 7, 30, 60}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"entity_type": "planet"}, "entity_type 'planet'"),
        ({"window": "7 weeks"}, "not a duration"),
        ({"threshold_kg": 0}, "threshold_kg must be positive"),
        ({"severity": "urgent"}, "severity 'urgent'"),
        ({"regrow_factor": 0.5}, "regrow_factor"),
        ({"id": "Bad Id"}, "id must be"),
        ({"colour": "red"}, "unknown field(s) colour"),
        ({"threshold_kg": "lots"}, "rule #1"),
    ],
)
def test_bad_rules_are_refused_with_rule_and_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match="rules.toml") as caught:
        parse_rules({"version": "1", "rule": [RULE | change]}, "rules.toml")
    assert message in str(caught.value)


def test_missing_version_duplicates_and_empty() -> None:
    with pytest.raises(ConfigError, match="version"):
        parse_rules({"rule": [RULE]}, "f")
    with pytest.raises(ConfigError, match="duplicated rule id"):
        parse_rules({"version": "1", "rule": [RULE, RULE]}, "f")
    with pytest.raises(ConfigError, match="at least one"):
        parse_rules({"version": "1", "rule": []}, "f")
    with pytest.raises(ConfigError, match="cannot read"):
        load_rules(Path("/nonexistent/rules.toml"))


def test_durations() -> None:
    assert parse_duration("90m", "w") == 5400 and parse_duration(30, "w") == 30
