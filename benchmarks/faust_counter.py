"""The ladder's middle rung: a bare Faust agent that only counts raw events, nothing else.

    python benchmarks/faust_counter.py BROKER_URL TOPIC GROUP N
Prints one JSON line (events, seconds from the first event to the N-th) and exits.
"""

from __future__ import annotations

import time

from faust_bench_app import bench_app, report_and_exit, run  # a sibling script

app, topic, target = bench_app("faust-counter")
seen = {"n": 0, "first": 0.0}


@app.agent(topic)
async def count(stream):  # type: ignore[no-untyped-def]
    async for _event in stream.events():
        if seen["n"] == 0:
            seen["first"] = time.perf_counter()
        seen["n"] += 1
        if seen["n"] >= target:
            report_and_exit({"events": seen["n"], "seconds": time.perf_counter() - seen["first"]})


if __name__ == "__main__":
    run(app)
