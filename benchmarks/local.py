"""Throw-away servers for a benchmark: Tansu and redis-server on free loopback ports, and the
settings that point at them."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streams.servers import RunningServer, redis_server, tansu_broker
from streams.settings import DEV_SECRET, Settings


def local_servers(
    stack: contextlib.ExitStack, work: Path, **overrides: Any
) -> tuple[Settings, RunningServer, RunningServer]:
    """Starts both servers on ``stack`` (they stop with it): the settings, the broker, redis-server."""
    broker = stack.enter_context(tansu_broker(work))
    redis = stack.enter_context(redis_server(work))
    defaults: dict[str, Any] = {"pseudonym_secret": DEV_SECRET, "metrics_port": 0, "data_dir": work / "faust"}
    return Settings(broker_url=broker.url, redis_url=redis.url, **(defaults | overrides)), broker, redis


def local_settings(stack: contextlib.ExitStack, work: Path, **overrides: Any) -> Settings:
    """Starts both servers on ``stack`` (they stop with it)."""
    return local_servers(stack, work, **overrides)[0]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuShares:
    """The CPU time each process uses from now on, as a share of one core over the wall time since."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self._pids = dict(pids)
        self._cpu = {name: cpu_seconds(pid) for name, pid in self._pids.items()}
        self._wall = time.monotonic()

    def read(self) -> dict[str, float]:
        wall = time.monotonic() - self._wall
        return {name: (cpu_seconds(pid) - self._cpu[name]) / wall for name, pid in self._pids.items()}
