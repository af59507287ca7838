"""A probe below the ladder's middle rung: Faust's fetch loop with a callback that only counts.

    python benchmarks/faust_fetch_counter.py BROKER_URL TOPIC GROUP N [aio|uvloop] [stock|eager]
The consumer hands each message to a callback that counts it, in place of Faust's conductor (which
decodes it into an event and queues it for the agent's stream). An agent still subscribes to the
topic and receives nothing. What this reads, beside the bare agent, splits Faust's per-event cost
between its fetch loop and its event-and-stream path. Prints one JSON line and exits.
"""

from __future__ import annotations

import time
from typing import Any

from faust_bench_app import bench_app, report_and_exit, run  # a sibling script

app, topic, target = bench_app("faust-fetch-counter")
seen = {"n": 0, "first": 0.0}


async def counted(_message: Any) -> None:
    if seen["n"] == 0:
        seen["first"] = time.perf_counter()
    seen["n"] += 1
    if seen["n"] >= target:
        report_and_exit({"events": seen["n"], "seconds": time.perf_counter() - seen["first"]})


@app.agent(topic)
async def subscribe(stream):  # type: ignore[no-untyped-def]
    async for _event in stream.events():
        raise SystemExit("the counting callback should have taken every message")


app.consumer.callback = counted  # before the fetch loop starts, which reads it once

if __name__ == "__main__":
    run(app)
