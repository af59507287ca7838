"""A real Prometheus scrapes a real worker replaying a stream; the dashboards and rules query what exists.

Also: the worker's health endpoints before, during and after start-up, and SIGTERM mid-stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml

from streams.kafka_security import aiokafka_options
from streams.replay import ReplayInput, export_alerts, run_replay, wait_until_processed
from streams.servers import free_port, spawn
from streams.settings import Settings
from streams.simulate import simulate
from tests.conftest import worker_process
from tests.replay_expectations import STREAM, essence, memory_store_alerts, read_expected, stream_counts

pytestmark = pytest.mark.integration
DEPLOY = Path(__file__).parents[2] / "deploy"
PROMETHEUS = shutil.which("prometheus")


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextlib.contextmanager
def prometheus(targets: list[str], workdir: Path) -> Iterator[str]:
    if PROMETHEUS is None:
        pytest.skip("prometheus is missing: run `bash setup.sh` (installs Debian's prometheus package)")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(DEPLOY / "prometheus" / "rules.yml")],
        "scrape_configs": [{"job_name": "parcelwatch", "static_configs": [{"targets": targets}]}],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    with contextlib.ExitStack() as stack, (workdir / "prometheus.log").open("wb") as out:
        spawn(
            stack,
            [
                PROMETHEUS,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if get(f"{url}/-/ready")[0] == 200:
                    break
            time.sleep(0.2)
        yield url


def query(url: str, expr: str) -> dict[str, object]:
    status, body = get(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    answer = json.loads(body)
    assert status == 200 and answer["status"] == "success", (expr, answer)
    return answer["data"]


def scalar(url: str, expr: str) -> float:
    result = query(url, expr)["result"]
    return float(result[0]["value"][1]) if result else float("nan")


def expressions() -> list[str]:
    exprs = [
        t["expr"]
        for p in json.loads((DEPLOY / "grafana" / "dashboards" / "parcelwatch.json").read_text())["panels"]
        for t in p["targets"]
    ]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text(encoding="utf-8"))
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    return exprs


PROMQL_WORDS = {
    "sum",
    "by",
    "rate",
    "increase",
    "delta",
    "histogram_quantile",
    "clamp_min",
    "max",
    "and",
    "offset",
    "le",
    "up",
    "without",
    "avg",
    "min",
    "count",
    "deriv",
}


def test_prometheus_scrapes_a_replaying_worker_and_every_expression_names_real_metrics(
    live_settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    settings = live_settings.model_copy(update={"metrics_port": port})
    with worker_process(settings, tmp_path / "worker.log") as proc, prometheus([f"127.0.0.1:{port}"], tmp_path) as url:
        deadline = time.monotonic() + 60
        while scalar(url, 'sum(parcelwatch_events_consumed_total{job="parcelwatch"})') != 0:  # NaN until scraped
            assert time.monotonic() < deadline, "Prometheus never scraped the worker"
            time.sleep(0.5)
        run_replay(settings, [ReplayInput(STREAM, "canonical")], None, with_worker=False)
        asyncio.run(wait_until_processed(settings, 240, proc))
        time.sleep(20)  # the Redis sample runs every 15 s; then a few scrapes
        consumed = scalar(url, 'sum(parcelwatch_events_consumed_total{job="parcelwatch"})')
        alerts = scalar(url, 'sum(parcelwatch_alerts_total{job="parcelwatch"})')
        assert consumed == stream_counts()[0] and alerts == len(read_expected())
        assert scalar(url, "max_over_time(sum(rate(parcelwatch_events_consumed_total[5s]))[5m:1s])") > 0
        assert scalar(url, 'up{job="parcelwatch"}') == 1
        assert scalar(url, "max(parcelwatch_redis_memory_bytes)") > 0
        exported = get(f"http://127.0.0.1:{port}/metrics")[1].decode()
        names = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{| )", exported, flags=re.MULTILINE))
        for expr in expressions():
            query(url, expr)  # the server parses and evaluates it
            used = {
                w
                for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*(?=\s*[\[{)]|\s*$|\s)", expr)
                if w.startswith("parcelwatch_")
            }
            assert used <= names, (expr, used - names)
            assert used or "up{" in expr, expr  # every panel and rule watches something real
        rules = json.loads(get(f"{url}/api/v1/rules")[1])["data"]["groups"][0]["rules"]
        assert {r["health"] for r in rules} == {"ok"}, rules


def listening_sockets(pid: int) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets process ``pid`` listens on, read from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = fd.readlink().name
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                octets = bytes.fromhex(address)[::-1] if len(address) == 8 else b""
                found.add((".".join(map(str, octets)) if octets else address, int(port, 16)))
    return found


def test_health_endpoints_before_during_and_after_start_up_and_sigterm(live_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    settings = live_settings.model_copy(update={"metrics_port": port})
    seen: list[tuple[str, int]] = []
    with worker_process(settings, tmp_path / "worker.log") as proc:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                live, ready = get(f"http://127.0.0.1:{port}/healthz")[0], get(f"http://127.0.0.1:{port}/readyz")[0]
            except OSError:
                seen.append(("down", 0))
            else:
                seen.append(("healthz", live))
                seen.append(("readyz", ready))
                if ready == 200:
                    break
            time.sleep(0.1)
        assert ("readyz", 503) in seen and seen[-1] == ("readyz", 200)
        assert all(code == 200 for what, code in seen if what == "healthz")
        assert get(f"http://127.0.0.1:{port}/nothing")[0] == 404
        assert listening_sockets(proc.pid) == {("127.0.0.1", port)}  # nothing else, nothing on all interfaces
        proc.send_signal(signal.SIGTERM)
        after = []
        while proc.poll() is None and len(after) < 200:
            with contextlib.suppress(OSError):
                after.append(get(f"http://127.0.0.1:{port}/readyz", timeout=1)[0])
            time.sleep(0.05)
        assert proc.wait(timeout=60) == 0
        assert 503 in after and 200 not in after[after.index(503) :]


async def committed_total(settings: Settings) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    from streams.topic_reader import end_offsets

    ends = await end_offsets(settings, [settings.topic("canonical")])
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.app_id, partitions=list(ends))
    finally:
        await admin.close()
    return sum(max(c.offset, 0) for c in committed.values())


def test_sigterm_mid_stream_then_restart_gives_exactly_the_expected_alerts(
    live_settings: Settings, tmp_path: Path
) -> None:
    """SIGTERM drains the current batch and commits; the next worker resumes: no loss, no double count."""
    stream = tmp_path / "stream.jsonl"
    simulate(seed=21, days=12, out=stream, scale=1.0)
    lines = stream.read_bytes().splitlines()
    run_replay(live_settings, [ReplayInput(stream, "canonical")], None, with_worker=False)
    # Commits every 0.3 s, not 2.8: the first worker could otherwise read the whole stream before its first.
    slow = live_settings.model_copy(update={"batch_size": 3, "batch_within_s": 0.05, "commit_interval_s": 0.3})
    with worker_process(slow, tmp_path / "first.log") as first:
        deadline = time.monotonic() + 60
        while asyncio.run(committed_total(slow)) < 50:  # well into the stream, far from its end
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.2)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
    done_by_first = asyncio.run(committed_total(slow))
    assert 50 <= done_by_first < len(lines), done_by_first
    with worker_process(live_settings, tmp_path / "second.log") as second:
        asyncio.run(wait_until_processed(live_settings, 240, second))
    out = tmp_path / "alerts.jsonl"
    asyncio.run(export_alerts(live_settings, out))
    got = sorted((essence(orjson.loads(line)) for line in out.read_bytes().splitlines()), key=lambda a: a["alert_id"])
    assert got and got == memory_store_alerts(lines)
