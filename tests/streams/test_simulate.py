"""The simulator: every tactic present, truth that matches the stream, real feeds' noise."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from detectors.descriptions import containers
from detectors.offline import parse_valid
from streams.simulate import SCENARIOS, TACTICS, simulate


def test_each_scenario_holds_its_mix_and_the_truth_matches_the_stream(tmp_path: Path) -> None:
    for name, scenario in SCENARIOS.items():
        out = tmp_path / f"{name}.jsonl"
        truth = simulate(seed=5, days=45, out=out, scale=0.1, scenario=name)
        events = parse_valid(out.read_bytes().splitlines())
        keys = {e.parcel_key for e in events}
        tactics = [c["tactic"] for c in truth["campaigns"]]
        assert {t: tactics.count(t) for t in set(tactics)} == scenario.tactics and set(tactics) == set(TACTICS)
        for campaign in truth["campaigns"]:
            assert campaign["parcels"] and all(kg > 0 for _, _, kg in campaign["parcels"])
            assert set(campaign["parcel_ids"]) <= keys
        assert truth["legitimate_parcels"] + sum(len(c["parcels"]) for c in truth["campaigns"]) == truth["parcels"]


def test_rings_share_phones_buildings_and_pickup_points(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    truth = simulate(seed=2, days=30, out=out, scale=0.1)
    [ring] = [c for c in truth["campaigns"] if c["tactic"] == "ring"]
    members = set(ring["parcel_ids"])
    events = [e for e in parse_valid(out.read_bytes().splitlines()) if e.parcel_key in members]
    phones = {e.sender.phone for e in events}
    pickups = {e.pickup_point for e in events}
    streets = {e.sender.address.street for e in events if e.sender.address}
    assert len(phones) < len(streets) and len(pickups) <= 3
    assert any("幢" in s for s in streets) and any("号楼" in s for s in streets) and any("-" in s for s in streets)


def test_deliveries_come_late_duplicated_and_malformed(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    truth = simulate(seed=9, days=30, out=out, scale=0.3, scenario="heldout")
    lines = out.read_bytes().splitlines()
    times, late_by = [], []
    for line in lines:
        try:
            times.append(orjson.loads(line)["event_time"])
        except (orjson.JSONDecodeError, TypeError, KeyError):
            continue
        if isinstance(times[-1], int) and len(times) > 1:
            newest = max(t for t in times[:-1] if isinstance(t, int))
            late_by.append(newest - times[-1])
    assert max(late_by) > 24 * 3_600_000  # beyond the allowed lateness: dead-lettered as late
    assert sum(1 for x in late_by if 3_600_000 < x < 6 * 3_600_000) > 0  # late, within it
    assert truth["duplicated_lines"] > 0 and truth["malformed_lines"] == 5
    assert len(lines) == truth["events"] == len(set(lines)) + truth["duplicated_lines"]
    assert json.loads(out.with_suffix(".truth.json").read_text(encoding="utf-8")) == truth


def test_water_described_in_english_reads_its_bottle_count() -> None:
    assert containers("Natural spring water 12 x 1500 ml", 1, "case", None).count == 12
    assert containers("Natural spring water 12 x 1500 ml", 2, "case", None).unit_volume_ml == 1500
    assert containers("矿泉水 550ml*24瓶", 2, "箱", None).count == 48
