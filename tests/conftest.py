"""Shared fixtures: real servers on free loopback ports, started once per session."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from streams.replay import settings_env
from streams.servers import RunningServer, redis_server, spawn, tansu_broker
from streams.settings import Settings
from tests.replay_expectations import SECRET


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[RunningServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def tansu_srv() -> Iterator[RunningServer]:
    with tansu_broker() as server:
        yield server


_runs = itertools.count()


@contextlib.contextmanager
def worker_process(settings: Settings, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `parcelwatch worker` child with ``settings``, stopped (SIGTERM) when the block ends."""
    with contextlib.ExitStack() as stack, log.open("wb") as out:
        yield spawn(
            stack,
            [sys.executable, "-m", "streams.cli", "worker"],
            stop_timeout_s=30,
            env=settings_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def isolated(settings: Settings, suffix: str) -> Settings:
    """A copy of ``settings`` with its own consumer group, topics and Redis keys."""
    return settings.model_copy(
        update={
            "app_id": f"{settings.app_id}-{suffix}",
            "redis_prefix": f"{settings.redis_prefix}{suffix}",
            "topic_prefix": f"{settings.topic_prefix}{suffix}.",
        }
    )


def settings_for(broker_url: str, redis_url: str, tmp_path: Path) -> Settings:
    """Settings against the given servers, isolated from every other run by unique names."""
    run = f"t{os.getpid()}x{next(_runs)}"
    return Settings(
        broker_url=broker_url,
        redis_url=redis_url,
        pseudonym_secret=SecretStr(SECRET),
        app_id=f"pw-{run}",
        topic_prefix=f"{run}.",
        redis_prefix=f"pw{run}",
        partitions=4,
        data_dir=tmp_path / "faust",
        idle_after_s=2.0,
        metrics_port=0,
    )


@pytest.fixture
def live_settings(tansu_srv: RunningServer, redis_srv: RunningServer, tmp_path: Path) -> Settings:
    """Settings for one test against the shared servers, isolated by unique names."""
    return settings_for(tansu_srv.url, redis_srv.url, tmp_path)
