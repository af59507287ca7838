"""What the benchmarks' own Faust apps share: the app, its input topic, how they are run, and how
they report.

    python benchmarks/<app>.py BROKER_URL TOPIC GROUP N [LOOP] [CONSUMER]

LOOP: Faust's event loop, ``aio`` (asyncio, the default) or ``uvloop``. CONSUMER: ``stock``
(Faust's own, the default) or ``eager`` (streams/eager_consumer.py, as the worker runs, with its
default fetch wait).
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import faust
import orjson

from streams.eager_consumer import App as EagerApp
from streams.settings import Settings

# Removed by report_and_exit: the app ends with os._exit, which runs no clean-up of its own.
_DATADIRS: list[str] = []


def bench_app(name: str) -> tuple[faust.App, Any, int]:
    """The app (consumer group from argv, reading from the earliest offset, groups formed in
    seconds), its raw-bytes input topic and the number of events to read."""
    broker, topic_name, group, target = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    _DATADIRS.append(tempfile.mkdtemp(prefix=f"pw-{name}-"))
    make: Callable[..., faust.App] = faust.App
    if option(1, "stock") == "eager":
        make = functools.partial(EagerApp, fetch_max_wait_ms=Settings.model_fields["fetch_max_wait_ms"].default)
    app = make(
        group,
        broker=broker,
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        datadir=_DATADIRS[-1],
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10.0,
        broker_rebalance_timeout=10.0,
        broker_heartbeat_interval=1.0,
        topic_partitions=8,
    )
    return app, app.topic(topic_name, key_serializer="raw", value_serializer="raw"), target


def report_and_exit(result: dict[str, Any]) -> None:
    """One JSON line, then out at once: the measurement is taken, no graceful shutdown to wait for."""
    print(orjson.dumps(result).decode(), flush=True)
    for datadir in _DATADIRS:
        shutil.rmtree(datadir, ignore_errors=True)
    os._exit(0)


def option(n: int, default: str) -> str:
    """The n-th optional argument after N (0: LOOP, 1: CONSUMER)."""
    return sys.argv[5 + n] if len(sys.argv) > 5 + n else default


def run(app: faust.App) -> None:
    loop = option(0, "aio")
    sys.argv = [sys.argv[0], "--quiet", "--loop", loop, "worker", "--without-web", "--loglevel", "warn"]
    app.main()
