"""A running worker's /metrics counts dead letters by reason, scored parcels and alerts."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.metrics import BATCH_STEPS
from streams.replay import ReplayInput, run_replay, wait_until_processed
from streams.servers import free_port
from streams.settings import Settings
from tests.conftest import worker_process
from tests.replay_expectations import STREAM, read_expected, stream_counts

pytestmark = pytest.mark.integration


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # noqa: S310
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_worker_metrics_count_what_the_replay_did(live_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    settings = live_settings.model_copy(update={"metrics_port": port})
    with worker_process(settings, tmp_path / "worker.log") as worker:
        summary = run_replay(settings, [ReplayInput(STREAM, "canonical")], None, with_worker=False)
        asyncio.run(wait_until_processed(settings, 240, worker))
        time.sleep(1.0)
        values = scrape(port)
    lines, malformed = stream_counts()
    assert summary.messages_published == lines
    dead = {
        dict(labels)["reason"]: v
        for (name, labels), v in values.items()
        if name == "parcelwatch_dead_letters_total" and v > 0
    }
    assert values[("parcelwatch_dead_letters_total", (("reason", "late"), ("stage", "window")))] == 0
    assert dead == {"bad_time": 1.0, "not_json": 1.0, "not_object": 1.0, "schema": 2.0}
    assert values[("parcelwatch_events_consumed_total", (("source", "canonical"),))] == lines
    assert values[("parcelwatch_parcels_scored_total", ())] == lines - malformed
    alerts = sum(v for (name, _), v in values.items() if name == "parcelwatch_alerts_total")
    assert alerts == len(read_expected())
    # Logs: every line is a JSON object; dead letters carry their source position, never their detail.
    records = [json.loads(line) for line in (tmp_path / "worker.log").read_text(encoding="utf-8").splitlines()]
    dead_lines = [r for r in records if r["message"] == "dead letter"]
    assert len(dead_lines) == 5 and all(
        {"source_topic", "source_partition", "source_offset"} <= set(r) for r in dead_lines
    )
    assert not any("detail" in r for r in dead_lines)
    assert sum(r["message"] == "alert raised" for r in records) == len(read_expected())
    labels = {k for (name, labels), _ in values.items() if name.startswith("parcelwatch_") for k, _ in labels}
    assert labels <= {
        "source",
        "outcome",
        "stage",
        "reason",
        "status",
        "rule",
        "severity",
        "le",
        "topic",
        "partition",
        "version",
        "operation",
        "step",
    }
    # Every batch was staged and windowed; each step's label is one of the closed set.
    steps = {
        dict(labels)["step"]: v
        for (name, labels), v in values.items()
        if name == "parcelwatch_batch_step_seconds_count"
    }
    assert set(steps) == set(BATCH_STEPS)
    assert steps["stage"] >= 1 and steps["window update"] >= steps["stage"] and steps["alert publish"] >= 1
