"""Rules changed while running: refused with the precise error, or applied from the next batch."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from detectors.errors import ConfigError
from streams.kafka_security import aiokafka_options
from streams.replay import ReplayInput, export_alerts, run_replay, settings_env, wait_until_processed
from streams.rules_control import RULES_KEY, ensure_control_topic, read_rules_message
from streams.settings import Settings
from tests.conftest import worker_process
from tests.replay_expectations import STREAM
from tests.streams.test_cli import cli

NEW_RULES = """version = "test-only-recipients"
[[rule]]
id = "any_recipient_1d"
description = "any recipient, any suspect mass, one day"
entity_type = "recipient"
window = "1d"
threshold_kg = 0.001
severity = "low"
regrow_factor = 0
"""


def test_a_bad_message_names_its_offset_and_fault() -> None:
    with pytest.raises(ConfigError, match="offset 7: not UTF-8"):
        read_rules_message(b"\xff\xfe", 7)
    with pytest.raises(ConfigError, match="offset 3: rule 'any_recipient_1d': threshold_kg must be positive"):
        read_rules_message(NEW_RULES.replace("0.001", "0").encode(), 3)
    assert read_rules_message(NEW_RULES.encode(), 0).version == "test-only-recipients"


def wait_for_line(log: Path, needle: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if needle in line:
                return line
        time.sleep(0.3)
    raise AssertionError(f"{needle!r} never appeared in {log}:\n{log.read_text()[-3000:]}")


async def send_raw(settings: Settings, value: bytes) -> None:
    topic = await ensure_control_topic(settings)
    producer = AIOKafkaProducer(**aiokafka_options(settings))
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=RULES_KEY)
    finally:
        await producer.stop()


@pytest.mark.integration
def test_a_running_worker_refuses_bad_rules_and_applies_good_ones(live_settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with worker_process(live_settings, log) as worker:
        # A buggy tool skips validation: the worker refuses with the precise error and keeps its rules.
        asyncio.run(send_raw(live_settings, b'version = "broken"\n[[rule]]\nid = "x"\n'))
        refused = orjson.loads(wait_for_line(log, "rules refused"))
        assert "offset 0: rule #1: missing field(s)" in refused["error"]
        assert worker.poll() is None

        good = tmp_path / "rules.toml"
        good.write_text(NEW_RULES, encoding="utf-8")
        published = cli("rules", "publish", str(good), env=settings_env(live_settings))
        assert published.returncode == 0, published.stderr
        in_force = orjson.loads(wait_for_line(log, '"rules in force"'))
        assert in_force["version"] == "test-only-recipients"

        run_replay(live_settings, [ReplayInput(STREAM, "canonical")], None, with_worker=False)
        asyncio.run(wait_until_processed(live_settings, 240, worker))
    out = tmp_path / "alerts.jsonl"
    asyncio.run(export_alerts(live_settings, out))
    rules = {orjson.loads(line)["rule"] for line in out.read_bytes().splitlines()}
    assert rules == {"any_recipient_1d"}  # only the rules now in force raise alerts
