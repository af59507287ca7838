"""The ladder's middle rung: a bare Faust agent that only counts raw events, nothing else.

    python benchmarks/faust_counter.py BROKER_URL TOPIC GROUP N [aio|uvloop] [events|batches]
Prints one JSON line (events, seconds from the first event to the N-th) and exits. ``events``
iterates event by event (``stream.events()``); ``batches`` takes 1000 at a time (``noack_take``,
acknowledged after counting), as the worker does.
"""

from __future__ import annotations

import time

from faust_bench_app import bench_app, option, report_and_exit, run  # a sibling script

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
    if option(1, "events") == "batches":
        async for events in stream.noack_take(1000, within=0.2):
            counted(len(events))
            for event in events:
                await stream.ack(event)
    else:
        async for _event in stream.events():
            counted(1)


if __name__ == "__main__":
    run(app)
