"""Docs that match the code: every setting in the README table, every dead-letter reason listed."""

from __future__ import annotations

import re
from pathlib import Path

from streams.settings import Settings

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme_table_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `(PARCELWATCH_[A-Z_]+)` \| ([^|]+) \|", README, flags=re.MULTILINE))
    for name, field in Settings.model_fields.items():
        variable = f"PARCELWATCH_{name.upper()}"
        assert variable in rows, f"{variable} is missing from the README's settings table"
        if field.default not in (None, ""):
            assert f"`{field.default}`" in rows[variable], f"{variable}: README default differs from the code"
    assert set(rows) == {f"PARCELWATCH_{n.upper()}" for n in Settings.model_fields}


def test_every_dead_letter_reason_is_documented() -> None:
    sources = "".join(
        p.read_text(encoding="utf-8")
        for d in ("detectors", "streams")
        for p in (Path(__file__).parents[1] / d).rglob("*.py")
    )
    reasons = set(re.findall(r'(?:InvalidEvent|Rejected)\(\s*"([a-z_]+)"', sources)) | {"late"}
    documented = README.split("Dead-letter reasons:")[1].split("\n\n")[0]
    assert reasons and all(f"`{r}`" in documented for r in reasons), reasons


def test_the_metrics_table_lists_exactly_the_metrics_the_worker_registers() -> None:
    from prometheus_client import CollectorRegistry

    from streams.metrics import Metrics

    registry = CollectorRegistry()
    Metrics(registry)
    # prometheus_client names a counter's family without its "_total" sample suffix.
    registered = {family.name for family in registry.collect()}
    table = set(re.findall(r"^\| `(parcelwatch_[a-z_]+)` \|", README, flags=re.MULTILINE))
    assert {name.removesuffix("_total") for name in table} == registered
