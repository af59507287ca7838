"""The console script as users run it: clear errors, simulate, export, decide, and the demo."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from detectors.windows import WindowConfig
from streams.replay import ReplayInput, run_replay, settings_env
from streams.settings import Settings
from streams.wiring import redis_client, window_store
from tests.replay_expectations import DATA

ROOT = Path(__file__).parents[2]


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARCELWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean | (env or {}),
        cwd=ROOT,
    )


def test_worker_without_a_secret_says_what_to_set() -> None:
    result = cli("worker")
    assert result.returncode == 2
    assert "PARCELWATCH_PSEUDONYM_SECRET is not set" in result.stderr and "Traceback" not in result.stderr


def test_bad_settings_and_rules_are_named(tmp_path: Path) -> None:
    result = cli("worker", env={"PARCELWATCH_PARTITIONS": "many"})
    assert result.returncode == 2 and "PARCELWATCH_PARTITIONS" in result.stderr
    rules = tmp_path / "rules.toml"
    rules.write_text(
        'version = "1"\n[[rule]]\nid = "r"\ndescription = "d"\nentity_type = "planet"\n'
        'window = "7d"\nthreshold_kg = 1\nseverity = "high"\n',
        encoding="utf-8",
    )
    result = cli("worker", env={"PARCELWATCH_RULES": str(rules), "PARCELWATCH_PSEUDONYM_SECRET": "x" * 20})
    assert result.returncode == 2 and "entity_type 'planet'" in result.stderr and str(rules) in result.stderr
    for ttl, said in (("soon", "is not a duration"), ("1h", "at least the allowed lateness")):
        result = cli("worker", env={"PARCELWATCH_PARKED_TTL": ttl, "PARCELWATCH_PSEUDONYM_SECRET": "x" * 20})
        assert result.returncode == 2 and "PARCELWATCH_PARKED_TTL" in result.stderr and said in result.stderr
        assert "Traceback" not in result.stderr


def test_a_worker_with_another_shard_count_than_the_deployments_stops_before_joining(live_settings: Settings) -> None:
    sharded = live_settings.model_copy(update={"redis_shards": 3})

    async def record() -> None:  # as a worker of three shards does on its first store call
        client = redis_client(sharded)
        try:
            await window_store(sharded, client, WindowConfig()).check_layout()
        finally:
            await client.aclose()

    asyncio.run(record())
    result = cli("worker", env=settings_env(live_settings))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "written with 3 shards, and PARCELWATCH_REDIS_SHARDS is 1: set it back to 3" in result.stderr
    # shards on one server, and more calls per event than the target: said before the refusal
    odd = live_settings.model_copy(update={"redis_shards": 2, "batch_size": 50})
    result = cli("worker", env=settings_env(odd))
    assert result.returncode == 2 and "written with 3 shards, and PARCELWATCH_REDIS_SHARDS is 2" in result.stderr
    assert "PARCELWATCH_REDIS_SHARDS=2 on one Redis server spreads nothing" in result.stderr
    assert "up to 0.080 Redis round trips per event" in result.stderr and "BATCH_SIZE to 200" in result.stderr


def test_replay_errors_are_clear(tmp_path: Path) -> None:
    result = cli("replay", str(tmp_path / "missing.jsonl"))
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = cli("replay", "--no-worker", str(DATA / "waybill_sample.csv"))
    assert result.returncode == 2 and "PARCELWATCH_BROKER_URL" in result.stderr


def test_simulate_writes_a_stream_and_its_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    assert cli("simulate", "--seed", "3", "--days", "3", "--scale", "0.1", "--out", str(out)).returncode == 0
    truth = json.loads(out.with_suffix(".truth.json").read_text(encoding="utf-8"))
    lines = out.read_bytes().splitlines()
    assert truth["events"] == len(lines) and truth["campaigns"]
    again = tmp_path / "t.jsonl"
    cli("simulate", "--seed", "3", "--days", "3", "--scale", "0.1", "--out", str(again))
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.integration
def test_alerts_export_writes_the_store_as_json_lines(live_settings: Settings, tmp_path: Path) -> None:
    replayed = tmp_path / "replayed.jsonl"
    run_replay(live_settings, [ReplayInput(DATA / "replay_stream.jsonl", "canonical")], replayed, timeout_s=240)
    exported = tmp_path / "exported.jsonl"
    result = cli("alerts", "export", "--out", str(exported), env=settings_env(live_settings))
    assert result.returncode == 0, result.stderr
    lines = exported.read_bytes().splitlines()
    assert lines and lines == replayed.read_bytes().splitlines()
    required = json.loads((ROOT / "detectors" / "contracts" / "alert.schema.json").read_text())["required"]
    assert all(set(required) <= set(orjson.loads(line)) for line in lines)
    assert {orjson.loads(line)["status"] for line in lines} == {"new"}

    first = orjson.loads(lines[0])["alert_id"]
    env = settings_env(live_settings)
    decided = cli("alerts", "decide", first, "false_positive", "--analyst", "A. Analyst", "--note", "shop", env=env)
    assert decided.returncode == 0, decided.stderr
    assert json.loads(decided.stdout)["suppressed_until_ms"] > time.time() * 1000 + 89 * 86400 * 1000
    cli("alerts", "export", "--out", str(exported), env=env)
    after = {a["alert_id"]: a for a in map(orjson.loads, exported.read_bytes().splitlines())}
    assert after[first]["status"] == "false_positive" and after[first]["decisions"][0]["analyst"] == "A. Analyst"
    missing = cli("alerts", "decide", "no-such-alert", "confirmed", "--analyst", "A", env=env)
    assert missing.returncode == 2 and "no alert 'no-such-alert'" in missing.stderr


@pytest.mark.integration
def test_demo_runs_end_to_end_and_cleans_up() -> None:
    result = cli("demo", "--days", "5", "--scale", "0.2", timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["alerts"] > 0 and summary["events_read"] > 0 and summary["dead_lettered"] == 5
    assert lines[0].startswith("severity") and "point mostly at campaign parcels" in result.stdout


@pytest.mark.integration
def test_sigterm_stops_a_replay_and_its_servers(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARCELWATCH_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "replay", str(DATA / "replay_stream.jsonl")],
        env=clean | {"TMPDIR": str(tmp_path)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not any(p.name.startswith("pw-worker-") for p in tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    time.sleep(0.5)
    assert list(tmp_path.iterdir()) == []


def test_credentials_in_server_urls_never_reach_a_message() -> None:
    from streams.settings import redact_url

    assert redact_url("redis://analyst:s3cr3t@10.0.0.5:6379/0") == "redis://***@10.0.0.5:6379/0"
    assert redact_url("rediss://:s3cr3t@redis.internal:6380") == "rediss://***@redis.internal:6380"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert "s3cr3t" not in Settings(redis_url="redis://u:s3cr3t@h:1/0").redis_where


def test_the_worker_collects_garbage_less_often_and_never_what_start_up_built() -> None:
    import gc

    from streams.cli import tune_garbage_collection

    before = gc.get_threshold()
    try:
        tune_garbage_collection(12_345)
        assert gc.get_threshold() == (12_345, *before[1:])
        assert gc.get_freeze_count() > 0
        gc.unfreeze()
        tune_garbage_collection(0)  # 0 leaves the threshold as it is (Python's own, in a fresh worker)
        assert gc.get_threshold() == (12_345, *before[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
