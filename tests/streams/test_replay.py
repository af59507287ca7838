"""Recorded streams through the real pipeline: Tansu, a Faust worker process, redis-server."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from streams.replay import ReplayInput, run_replay
from streams.settings import Settings
from tests.conftest import isolated
from tests.replay_expectations import DATA, STREAM, essence, read_expected, stream_counts

pytestmark = pytest.mark.integration


def alerts_of(path: Path) -> list[dict[str, object]]:
    return sorted((essence(orjson.loads(line)) for line in path.read_bytes().splitlines()), key=lambda a: a["alert_id"])


def shuffled_within(lines: list[bytes], seconds: int, seed: int) -> list[bytes]:
    """Shuffle events inside consecutive buckets of ``seconds`` of event time (well within the lateness)."""
    rnd = random.Random(seed)
    keyed = []
    for index, line in enumerate(lines):
        try:
            bucket = int(orjson.loads(line)["event_time"]) // (seconds * 1000)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            bucket = -1  # malformed lines stay where they are, in their own bucket
        keyed.append((bucket if bucket >= 0 else index, rnd.random(), line))
    return [line for _, _, line in sorted(keyed, key=lambda k: (k[0], k[1]))]


def test_recorded_stream_gives_exactly_the_expected_alerts_twice(live_settings: Settings, tmp_path: Path) -> None:
    expected = read_expected()
    for run in ("first", "second"):
        settings = isolated(live_settings, run)
        out = tmp_path / f"{run}.jsonl"
        summary = run_replay(settings, [ReplayInput(STREAM, "canonical")], out, timeout_s=240)
        assert alerts_of(out) == expected
        assert summary.alerts == len(expected) and summary.events_read == stream_counts()[0]
        assert summary.dead_letter_reasons == {"bad_time": 1, "not_json": 1, "not_object": 1, "schema": 2}


def test_shuffled_within_the_lateness_gives_the_same_alerts(live_settings: Settings, tmp_path: Path) -> None:
    shuffled = tmp_path / "shuffled.jsonl"
    lines = shuffled_within(STREAM.read_bytes().splitlines(), seconds=3600, seed=5)
    assert lines != STREAM.read_bytes().splitlines()
    shuffled.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "alerts.jsonl"
    summary = run_replay(live_settings, [ReplayInput(shuffled, "canonical")], out, timeout_s=240)
    assert alerts_of(out) == read_expected()
    assert "late" not in summary.dead_letter_reasons


LOW_RULES = """
version = "test-low"
[[rule]]
id = "phone_any"
description = "any suspect mass from one sender phone (test rule)"
entity_type = "sender_phone"
window = "30d"
threshold_kg = 0.5
min_parcels = 1
severity = "low"
[[rule]]
id = "recipient_any"
description = "any suspect mass to one recipient (test rule)"
entity_type = "recipient"
window = "30d"
threshold_kg = 0.5
min_parcels = 1
severity = "low"
"""


def test_adapter_formats_replay_like_their_canonical_twins(live_settings: Settings, tmp_path: Path) -> None:
    """CSV and XML go through the adapter agents; the canonical twins straight to the detector."""
    rules = tmp_path / "rules.toml"
    rules.write_text(LOW_RULES, encoding="utf-8")
    live_settings = live_settings.model_copy(update={"rules": rules})
    raw = run_replay(
        live_settings,
        [
            ReplayInput(DATA / "waybill_sample.csv", "waybill-csv"),
            ReplayInput(DATA / "export_9610_sample.xml", "export-9610"),
        ],
        tmp_path / "a.jsonl",
        timeout_s=240,
    )
    twin_settings = isolated(live_settings, "twin")
    twins = run_replay(
        twin_settings,
        [
            ReplayInput(DATA / "waybill_sample.canonical.jsonl", "canonical"),
            ReplayInput(DATA / "export_9610_sample.canonical.jsonl", "canonical"),
        ],
        tmp_path / "b.jsonl",
        timeout_s=240,
    )
    assert raw.events_read == twins.events_read == 6 and raw.parcels == twins.parcels == 5
    assert raw.dead_lettered == twins.dead_lettered == 0
    adapted, canonical = alerts_of(tmp_path / "a.jsonl"), alerts_of(tmp_path / "b.jsonl")
    assert adapted == canonical
    # The dense "ceramic additive" box and the overweight cosmetics export, per phone and recipient; the
    # overweight water case was cancelled before its window was judged, so it is not there.
    assert {(a["rule"], tuple(a["parcel_ids"])) for a in adapted} == {
        (rule, (parcel,))
        for rule in ("phone_any", "recipient_any")
        for parcel in ("ZTO:ZTO7700000002", "YTO:YT9610000001")
    }
