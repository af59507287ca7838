"""Where a worker's CPU goes, sampled by py-spy: one ``parcelwatch worker`` over the ladder's stream.

    .venv/bin/python benchmarks/worker_profile.py [--events 500000] [--rate 100] [--keep PROFILE.txt]

The stream is benchmarks/throughput.py's (``publish_stream``), on a Tansu broker and a redis-server of
its own. Once the worker has committed its first offsets, ``py-spy record --gil`` samples it (every
thread, only while it holds the interpreter lock: Python at work, not waiting) until it has
committed every event. Each sample goes to the part of the worker that its innermost frame of
known code belongs to (``PARTS``): a sample in ``re`` called from detectors/entities.py counts as
linking, one in asyncio called from redis-py as the store call. The worker's CPU time and its
committed events over the same span give the CPU an event, which the parts share as they share the
samples. The parts refine the ladder's split of a worker's cost (BENCHMARKS.md, "Throughput ladder":
getting its events, the detector's four stages, the rest), read from one profile of the worker
rather than from probes run apart. Writes its tables into BENCHMARKS.md.

The profiler pauses the worker at each sample, so the worker reads more slowly than in the ladder;
the shares are what this measures, not the speed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import detectors
import streams
from streams.servers import spawn

sys.path.insert(0, str(Path(__file__).parent))
from local import local_servers  # noqa: E402 - benchmarks are scripts, not a package
from report import provenance, write_section  # noqa: E402
from throughput import PipelineRun, pipeline_rung, publish_stream  # noqa: E402

DETECTORS = str(Path(detectors.__file__).parent) + "/"
STREAMS = str(Path(streams.__file__).parent) + "/"

# (part, marks), in the order shown. A frame ("function (path:line)"; py-spy names a file from its
# package on, and a method with its class) belongs to a part when its file starts with one of the
# part's marks, and, for a mark given as (file, functions), its function is one of them or is
# defined inside one.
# Modules any part calls (re, unicodedata, functools, hashlib, numpy, json) belong to none: their
# samples go to the caller. pipeline.py and store_redis.py hold more than one part each.
Mark = str | tuple[str, frozenset[str]]
PARTS: tuple[tuple[str, tuple[Mark, ...]], ...] = (
    (
        "getting events: Faust, aiokafka and the intake (fetch, messages, acknowledging, commits)",
        ("faust/", "aiokafka/", "mode/", "streams/eager_consumer.py", "streams/batch_intake.py"),
    ),
    (
        "1. parse (the one pass; the schema's way for what it refuses)",
        ("detectors/wire.py", "detectors/validation.py"),
    ),
    ("2. score", ("detectors/scoring.py", "detectors/reference.py", "detectors/descriptions.py")),
    (
        "3. link entities (normalise, key), clusters' entries, suspect parcels' details",
        (
            "detectors/entities.py",
            "detectors/clusters.py",
            "detectors/parcel_store.py",
            ("detectors/pipeline.py", frozenset({"entity_updates", "parcel_update"})),
            ("detectors/windows.py", frozenset({"parcel_wide"})),
        ),
    ),
    (
        "4. the store's request (rows and entities encoded)",
        (
            (
                "detectors/store_redis.py",
                frozenset(
                    {
                        "RedisWindowStore.prepare",
                        "RedisWindowStore._request",
                        "_row",
                        "_entity_json",
                        "parcel_rows",
                        "stored_event_id",
                    }
                ),
            ),
            ("detectors/windows.py", frozenset({"update_row"})),
        ),
    ),
    (
        "the store call, client side (redis-py, the reply read back)",
        ("redis/", "detectors/store_redis.py", "detectors/store.py", "detectors/windows.py"),
    ),
    (
        "alerts and evidence (documents, the alert and parcel stores)",
        ("detectors/alerts.py", "detectors/alert_store.py", "detectors/pipeline.py"),
    ),
    ("metrics (prometheus_client)", ("prometheus_client/", "streams/metrics.py")),
    ("the worker's own loop (streams/: staging, clock, retries, publishing)", ("streams/",)),
)
REST = "the event loops' own work (asyncio's dispatch, in both of the worker's threads) and the rest"


def _belongs(function: str, path: str, mark: Mark) -> bool:
    if isinstance(mark, str):
        return path.startswith(mark)
    where, functions = mark
    return path.startswith(where) and function.split(".<locals>")[0] in functions


def part_of(frames: list[str]) -> str:
    """The part of the innermost frame that belongs to one (frames: outermost first)."""
    for frame in reversed(frames):
        function, _, path = frame.partition(" (")
        path = _short(path)
        # Where a task's step starts: past it lie only the loop and what started it (mode's worker,
        # Faust's consumer thread), which would otherwise count as getting events.
        if function == "Handle._run" and path.startswith("asyncio/events.py"):
            return REST
        for part, marks in PARTS:
            if any(_belongs(function, path, mark) for mark in marks):
                return part
    return REST


def read_samples(raw: Path) -> list[tuple[list[str], int]]:
    """py-spy's ``--format raw``: one line per distinct stack, ``frame;frame;... count``."""
    samples = []
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            samples.append((stack.split(";"), int(count)))
    return samples


def tally(
    samples: Iterable[tuple[list[str], int]],
) -> tuple[collections.Counter[str], collections.Counter[tuple[str, str]]]:
    """Samples per part, and per innermost function (``function (file)``, without the line) and the
    part its samples went to."""
    parts: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[tuple[str, str]] = collections.Counter()
    for frames, count in samples:
        part = part_of(frames)
        parts[part] += count
        function, _, path = frames[-1].partition(" (")
        leaves[(f"{function} ({_short(path.rsplit(':', 1)[0])})", part)] += count
    return parts, leaves


def _short(path: str) -> str:
    """A frame's file as a reader knows it: from the package on."""
    for root in (DETECTORS, STREAMS):
        if path.startswith(root):
            return Path(root).name + "/" + path.removeprefix(root)
    return re.sub(r"^.*/(site-packages|lib/python3\.\d+)/", "", path)


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: `bash setup.sh` installs it (requirements.lock, the dev extras)")
    return found


@contextlib.contextmanager
def py_spy_on(pid: int, rate: int, raw: Path, log: Path) -> Iterator[None]:
    """py-spy sampling process ``pid`` while the block runs; its raw profile written to ``raw`` at the end."""
    # Its messages go to a file: a pipe nobody reads until the end could fill and hold py-spy up.
    # Stopped with the stack if the block fails; at the end it is stopped below, and writes its profile.
    with contextlib.ExitStack() as stack, log.open("wb") as messages:
        spy = spawn(
            stack,
            [py_spy(), "record", "--pid", str(pid), "--rate", str(rate), "--gil", "--format", "raw"]
            + ["--output", str(raw)],
            stdout=subprocess.DEVNULL,
            stderr=messages,
        )
        yield
        if spy.poll() is not None:
            raise SystemExit(f"py-spy stopped before the worker's last event (exit {spy.returncode}): {_tail(log)}")
        spy.send_signal(signal.SIGINT)  # py-spy writes its profile and exits
        if spy.wait(timeout=120) != 0 or not raw.exists():
            raise SystemExit(f"py-spy wrote no profile (exit {spy.returncode}): {_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-1000:]


def profile_worker(events: int, rate: int, work: Path) -> tuple[Path, PipelineRun]:
    """The ladder's pipeline rung over ``events`` published events, with py-spy on its worker over
    the timed span; the raw profile and the rung's figures."""
    raw = work / "profile.txt"
    with contextlib.ExitStack() as stack:
        settings, _, _ = local_servers(stack, work, app_id="bench-profile")
        publish_stream(settings, work, events)
        run = pipeline_rung(settings, events, work, beside=lambda pid: py_spy_on(pid, rate, raw, work / "py-spy.log"))
    return raw, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--rate", type=int, default=100, help="samples a second (py-spy --rate)")
    parser.add_argument(
        "--keep", type=Path, help="also copy py-spy's raw profile there (for a flame graph: flamegraph.pl, speedscope)"
    )
    args = parser.parse_args()
    if args.events < 100_000:
        parser.error("--events must be at least 100000: the worker's start-up would weigh on the profile")
    with tempfile.TemporaryDirectory(prefix="pw-profile-") as tmp:
        raw, run = profile_worker(args.events, args.rate, Path(tmp))
        parts, leaves = tally(read_samples(raw))
        if args.keep:
            shutil.copyfile(raw, args.keep)
    total = sum(parts.values())
    if total == 0:
        raise SystemExit("py-spy took no samples: is the worker allowed to be traced (ptrace)?")
    # Every event is got, parsed, scored, linked and encoded: a part with none of the samples means
    # its marks no longer name the code that does it (a file or function renamed), not that it is free.
    unseen = [part for part, _ in PARTS[:5] if not parts[part]]
    if unseen:
        raise SystemExit(f"no samples for {unseen}: update PARTS in benchmarks/worker_profile.py to the code's names")
    us_an_event = 1e6 / run.eps_per_worker_core
    order = [part for part, _ in PARTS] + [REST]
    write_section(
        "Where a worker's time goes (py-spy)",
        [
            provenance(f"python benchmarks/worker_profile.py --events {args.events} --rate {args.rate}"),
            f"One `parcelwatch worker` over {args.events:,} events of the throughput ladder's stream (8 partitions,"
            f" its own Tansu broker and redis-server), sampled by `py-spy record --gil --rate {args.rate}` from its"
            f" first committed offsets to its last (the throughput ladder's pipeline rung, timed the same way):"
            f" {run.eps:,.0f} events/s under the profiler (py-spy pauses the worker at each sample), {total:,}"
            f" samples while it held the interpreter lock. Its CPU over the same span was {run.worker_cpu:.0%} of a"
            f" core, {us_an_event:.1f} us an event.",
            "",
            "Each sample counts for the part its innermost frame of known code belongs to (`PARTS` in"
            " benchmarks/worker_profile.py): a sample in `re` called from linking counts as linking. The us an event"
            " are each part's share of the worker's CPU an event: shares of samples taken with the lock held,"
            " applied to all of the worker's CPU, so read them as approximate.",
            "",
            "| part | samples | share | about us an event |",
            "|---|---:|---:|---:|",
            *[
                f"| {part} | {parts[part]:,} | {parts[part] / total:.1%} | {parts[part] / total * us_an_event:.1f} |"
                for part in order
            ],
            "",
            "The functions with the most samples of their own (innermost frame; a C function shows as the"
            " Python function that called it, and a garbage collection as the one whose allocation set it off):",
            "",
            "| function | share | part |",
            "|---|---:|---|",
            *[
                f"| `{name}` | {count / total:.1%} | {part.split(' (')[0].split(':')[0]} |"
                for (name, part), count in leaves.most_common(15)
            ],
        ],
    )


if __name__ == "__main__":
    main()
