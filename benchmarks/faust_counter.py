"""The ladder's middle rung: a bare Faust agent that only counts raw events, nothing else.

    python benchmarks/faust_counter.py BROKER_URL TOPIC GROUP N [aio|uvloop] [stock|eager]
Prints one JSON line (events, seconds from the first event to the N-th) and exits. It iterates
event by event (``stream.events()``). Taking batches of 1000 with ``noack_take``, as the worker
does, read no faster (the ladder of 2026-11-24 07:33 UTC); that mode is gone.
"""

from __future__ import annotations

import time

from faust_bench_app import bench_app, report_and_exit, run  # a sibling script

app, topic, target = bench_app("faust-counter")
seen = {"n": 0, "first": 0.0}


def counted(n: int) -> None:
    if seen["n"] == 0:
        seen["first"] = time.perf_counter()
    seen["n"] += n
    if seen["n"] >= target:
        report_and_exit({"events": seen["n"], "seconds": time.perf_counter() - seen["first"]})


@app.agent(topic)
async def count(stream):  # type: ignore[no-untyped-def]
    async for _event in stream.events():
        counted(1)


if __name__ == "__main__":
    run(app)
