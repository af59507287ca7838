"""Faults injected into a live replay (real Tansu, real Faust workers, real redis-server), each run
compared with an uninterrupted run of the same stream: same alerts, same window records, no
alert published twice, nothing lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streams.replay import ReplayInput, run_replay, settings_env, start_worker, wait_until_processed
from streams.servers import RunningServer, free_port, redis_server, s3_server, tansu_broker
from streams.settings import Settings
from streams.simulate import simulate, within_lateness
from tests.conftest import settings_for
from tests.streams.fault_harness import Outcome, committed, metric_total, outcome, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 23,000 events: long enough to crash a worker in the middle, short enough for CI."""
    path = tmp_path_factory.mktemp("faults") / "stream.jsonl"
    simulate(seed=21, days=30, out=path, scale=2.0)
    lines = path.read_bytes().splitlines()
    kept = within_lateness(lines, lateness_ms=5 * 3600 * 1000)  # an hour inside the default 6 h
    assert 0 < len(lines) - len(kept) < 100
    path.write_bytes(b"\n".join(kept) + b"\n")
    return path


@pytest.fixture(scope="module")
def uninterrupted(
    stream: Path, tansu_srv: RunningServer, redis_srv: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Outcome:
    settings = settings_for(tansu_srv.url, redis_srv.url, tmp_path_factory.mktemp("uninterrupted"))
    run_replay(settings, [ReplayInput(stream, "canonical")], None, timeout_s=300)
    result = outcome(settings)
    assert len(result.alert_ids) > 20 and len(result.windows) > 1000
    return result


def assert_same(result: Outcome, uninterrupted: Outcome, republished_ok: bool = False) -> None:
    diffs = result.same_as(uninterrupted, republished_ok)
    assert not diffs, "unlike the uninterrupted run:\n" + "\n".join(diffs)


def worker_env(settings: Settings, workdir: Path) -> dict[str, str]:
    return settings_env(settings) | {"PARCELWATCH_DATA_DIR": str(workdir)}


def with_metrics(settings: Settings) -> Settings:
    """Own /metrics port; a dead worker's alerts are reclaimed after 10 s rather than 60. Batches of
    100, not 1,000, and commits every 0.3 s, not 2.8: a worker reads this stream in a second or two,
    and a fault must land while most of it is still uncommitted, at a commit seen in between."""
    return settings.model_copy(
        update={"metrics_port": free_port(), "alert_reclaim_s": 10, "batch_size": 100, "commit_interval_s": 0.3}
    )


def readiness(settings: Settings) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.metrics_port}/readyz", timeout=5) as response:  # noqa: S310
            return response.status, orjson.loads(response.read())["detail"]
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())["detail"]


def publish(settings: Settings, stream: Path) -> None:
    """Before any worker starts: see docs/windows.md, "Idle partitions and old data"."""
    run_replay(settings, [ReplayInput(stream, "canonical")], None, with_worker=False)


def kill_when_processed(settings: Settings, victim: subprocess.Popen[bytes], share: float) -> tuple[int, int]:
    """SIGKILL ``victim`` once the group has committed ``share`` of the input; returns (done, total)
    as last seen before the kill (the victim may be the broker that answers the question)."""
    seen = [(0, 1)]

    def reached() -> bool:
        seen[0] = committed(settings)
        return seen[0][0] >= share * seen[0][1]

    wait_for(f"{share:.0%} of the input committed", reached, 180)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    return seen[0]


def finish(settings: Settings, survivor: subprocess.Popen[bytes]) -> None:
    asyncio.run(wait_until_processed(settings, 300, survivor))


def test_worker_killed_mid_stream_and_restarted(
    stream: Path, uninterrupted: Outcome, live_settings: Settings, tmp_path: Path
) -> None:
    settings = with_metrics(live_settings)
    with contextlib.ExitStack() as stack:
        publish(settings, stream)
        first = start_worker(stack, worker_env(settings, tmp_path / "w1"), tmp_path / "w1.log")
        done, total = kill_when_processed(settings, first, 0.3)
        assert done < total, "the worker finished before it could be killed: make the stream longer"
        second = start_worker(stack, worker_env(settings, tmp_path / "w2"), tmp_path / "w2.log")
        finish(settings, second)
    assert_same(outcome(settings), uninterrupted)


def test_two_workers_one_killed_the_survivor_takes_over(
    stream: Path, uninterrupted: Outcome, live_settings: Settings, tmp_path: Path
) -> None:
    one, two = with_metrics(live_settings), with_metrics(live_settings)
    with contextlib.ExitStack() as stack:
        publish(one, stream)
        victim = start_worker(stack, worker_env(one, tmp_path / "w1"), tmp_path / "w1.log")
        survivor = start_worker(stack, worker_env(two, tmp_path / "w2"), tmp_path / "w2.log")
        wait_for(
            "both workers consuming",
            lambda: min(metric_total(s.metrics_port, "parcelwatch_events_consumed_total") for s in (one, two)) > 0,
            120,
        )
        done, total = kill_when_processed(one, victim, 0.3)
        assert done < total
        finish(one, survivor)
    assert_same(outcome(one), uninterrupted)


@contextlib.contextmanager
def own_redis(workdir: Path) -> Iterator[RunningServer]:
    workdir.mkdir(parents=True, exist_ok=True)
    with redis_server(workdir, appendonly=True) as server:
        yield server


def test_redis_killed_mid_stream_restarts_from_its_aof(
    stream: Path, uninterrupted: Outcome, tansu_srv: RunningServer, tmp_path: Path
) -> None:
    redis_dir = tmp_path / "redis"
    with own_redis(redis_dir) as redis:
        settings = with_metrics(settings_for(tansu_srv.url, redis.url, tmp_path))
        with contextlib.ExitStack() as stack:
            publish(settings, stream)
            worker = start_worker(stack, worker_env(settings, tmp_path / "w"), tmp_path / "w.log")
            done, total = kill_when_processed(settings, redis.process, 0.3)
            assert done < total
            wait_for(
                "the worker counting Redis errors",
                lambda: metric_total(settings.metrics_port, "parcelwatch_redis_errors_total") > 0,
                60,
            )
            with redis_server(redis_dir, appendonly=True, port=redis.port):
                finish(settings, worker)
                result = outcome(settings)
    assert_same(result, uninterrupted)


def test_redis_unreachable_for_30_s_nothing_committed_meanwhile_nothing_lost(
    stream: Path, uninterrupted: Outcome, tansu_srv: RunningServer, tmp_path: Path
) -> None:
    redis_dir = tmp_path / "redis"
    with own_redis(redis_dir) as redis:
        settings = with_metrics(settings_for(tansu_srv.url, redis.url, tmp_path))
        log = tmp_path / "w.log"
        with contextlib.ExitStack() as stack:
            publish(settings, stream)
            worker = start_worker(stack, worker_env(settings, tmp_path / "w"), log)
            wait_for("30% committed", lambda: committed(settings)[0] >= 0.3 * committed(settings)[1], 180)
            redis.process.terminate()  # a clean stop: connections refused from here on
            redis.process.wait()
            down = time.monotonic()
            time.sleep(5)  # a commit already under way may still land
            during = committed(settings)
            errors_then = metric_total(settings.metrics_port, "parcelwatch_redis_errors_total")
            time.sleep(max(0.0, 30 - (time.monotonic() - down)))
            assert committed(settings) == during, "offsets were committed while Redis was unreachable"
            assert during[0] < during[1]
            assert metric_total(settings.metrics_port, "parcelwatch_redis_errors_total") > errors_then > 0
            assert worker.poll() is None, "the worker died while Redis was unreachable"
            assert readiness(settings) == (503, "Redis is not answering")  # out of rotation meanwhile
            with redis_server(redis_dir, appendonly=True, port=redis.port):
                finish(settings, worker)
                result = outcome(settings)
    text = log.read_text()
    assert "failed; retrying in" in text and "offsets are not committed meanwhile" in text
    assert_same(result, uninterrupted)


def test_broker_killed_mid_stream_and_restarted(
    stream: Path, uninterrupted: Outcome, redis_srv: RunningServer, tmp_path: Path
) -> None:
    """Tansu keeps its topics and offsets in S3 here (a local moto server), so that a restarted
    broker has them again, as Kafka has them on its disks.

    An alert the broker stored but died before acknowledging is published again when the worker
    retries: the alerts topic may then hold it twice (same id, same content; seen in one of the
    first two runs). Everything else must be exactly as in the uninterrupted run."""
    with s3_server(tmp_path) as storage, tansu_broker(tmp_path, storage=storage) as broker:
        settings = with_metrics(settings_for(broker.url, redis_srv.url, tmp_path))
        with contextlib.ExitStack() as stack:
            publish(settings, stream)
            worker = start_worker(stack, worker_env(settings, tmp_path / "w"), tmp_path / "w.log")
            done, total = kill_when_processed(settings, broker.process, 0.3)
            assert done < total
            time.sleep(5)  # the worker meets a dead broker for a while
            assert worker.poll() is None, "the worker died with the broker"
            with tansu_broker(tmp_path, storage=storage, port=broker.port):
                finish(settings, worker)
                result = outcome(settings)
    assert_same(result, uninterrupted, republished_ok=True)
