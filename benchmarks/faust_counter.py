"""The ladder's middle rung: a bare Faust agent that only counts raw events, nothing else.

    python benchmarks/faust_counter.py BROKER_URL TOPIC GROUP N
Prints one JSON line (events, seconds from the first event to the N-th) and exits.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import faust
import orjson

broker, topic_name, group, target = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
app = faust.App(
    group,
    broker=broker,
    store="memory://",
    web_enabled=False,
    autodiscover=False,
    datadir=tempfile.mkdtemp(prefix="pw-faust-counter-"),
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=10.0,
    broker_rebalance_timeout=10.0,
    broker_heartbeat_interval=1.0,
)
topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")
seen = {"n": 0, "first": 0.0}


@app.agent(topic)
async def count(stream):  # type: ignore[no-untyped-def]
    async for _event in stream.events():
        if seen["n"] == 0:
            seen["first"] = time.perf_counter()
        seen["n"] += 1
        if seen["n"] >= target:
            print(
                orjson.dumps({"events": seen["n"], "seconds": time.perf_counter() - seen["first"]}).decode(), flush=True
            )
            os._exit(0)  # the measurement is taken; no graceful shutdown to wait for


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "--quiet", "worker", "--without-web", "--loglevel", "warn"]
    app.main()
