"""A probe beside the ladder's pipeline rung: the worker's intake with a detector that only counts.

    python benchmarks/faust_intake_counter.py BROKER_URL TOPIC GROUP N [aio|uvloop] [stock|eager]

The worker's way in (streams/batch_intake.py on the eager consumer): batches taken from the
intake, as many and as large as the worker's, and each acknowledged as the worker acknowledges an
applied batch, so that Faust commits their offsets; nothing parsed, scored or stored. What this
reads, beside the pipeline rung, splits a worker's cost between getting its events (Faust,
aiokafka, the intake, acknowledging) and the detector; its CPU time, beside the worker's per core.
Prints one JSON line and exits.
"""

from __future__ import annotations

import time

from faust_bench_app import bench_app, report_and_exit, run  # a sibling script

from streams.batch_intake import BatchIntake
from streams.settings import Settings

app, topic, target = bench_app("faust-intake-counter")
_defaults = Settings.model_fields
intake = BatchIntake.for_worker(app, topic.get_topic_name(), _defaults["batch_size"].default)
app.topics.add(topic)  # subscribed without an agent, as the worker does
intake.install()


@app.task
async def count() -> None:
    # Timed from the first batch on (the group join is not counted), over the events after it.
    # The process's CPU time (all its threads: aiokafka's runs in one of Faust's) over the same span.
    seen, first, first_cpu, first_batch = 0, 0.0, 0.0, 0
    while True:
        batch = await intake.take(_defaults["batch_within_s"].default)
        if not first:
            first, first_cpu, first_batch = time.perf_counter(), time.process_time(), len(batch)
        intake.acknowledge(batch)
        seen += len(batch)
        if seen >= target:
            report_and_exit(
                {
                    "events": seen - first_batch,
                    "seconds": time.perf_counter() - first,
                    "cpu_seconds": time.process_time() - first_cpu,
                }
            )


if __name__ == "__main__":
    run(app)
