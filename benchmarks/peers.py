"""Peers side by side: the windowed job as Faust's own windowed tables would do it, against ours.

    .venv/bin/python benchmarks/peers.py [--events 100000]

One broker, one stream, one run: a bare Faust agent that counts (the ceiling), the job on Faust's
windowed tables (benchmarks/faust_windowed.py: hopping windows with a changelog), and our
pipeline (one `parcelwatch worker`), the job on Quix Streams (benchmarks/quix_windowed.py:
true sliding windows in RocksDB) and the job on Bytewax (benchmarks/bytewax_windowed.py: hopping
windows folded in a Rust dataflow), both installed with their own dependencies into
benchmarks/.peers-venv (made on first use; neither is a dependency of parcelwatch). Writes its
table into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from local import local_settings  # noqa: E402 - benchmarks are scripts, not a package
from report import provenance, write_result, write_section  # noqa: E402
from throughput import faust_rung, pipeline_rung, publish_stream  # noqa: E402

CANNOT = {
    "Faust windowed table": (
        "true sliding windows (30 hopping windows a day apart stand in for one; each update writes all 30 to the"
        " changelog); taking back or replacing a parcel's mass (a redelivered event is added twice, a scale"
        " reading cannot replace a declaration, a cancellation cannot retract); identity clusters (a union-find"
        " across keys); several workers without a repartition topic per entity type"
    ),
    "Quix Streams sliding window": (
        "a time for the whole stream (late rows are dropped per partition); taking back or replacing a"
        " parcel's mass (redelivery adds twice, no scale reading replaces a"
        " declaration, no cancellation retracts); identity clusters; evidence (the parcels behind a sum)"
        " without keeping a list per window"
    ),
    "Bytewax hopping windows": (
        "true sliding windows (30 windows a day apart stand in for one, as in Faust's table); a time for the"
        " whole stream (the event clock is kept per key: an entity's rows from different partitions that come"
        " later than the grace are dropped); an alert before its window closes (a window's sum comes out when"
        " event time passes its end, up to 30 days after the crossing); taking back or replacing a parcel's"
        " mass; identity clusters; evidence without keeping a list per window"
    ),
    "parcelwatch pipeline": "nothing of the above; its window state lives in Redis, one script call per batch",
}


ROOT = Path(__file__).parents[1]
PEERS_VENV = ROOT / "benchmarks" / ".peers-venv"
QUIX = "quixstreams==3.28.1"
BYTEWAX = "bytewax==0.21.1"


def peers_python() -> Path:
    """The peers' venv: Quix Streams, Bytewax and parcelwatch (for the same parsing and scoring), made
    once and given parcelwatch's dependencies as they now are on each run."""
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        print(f"making {PEERS_VENV} with {QUIX} and {BYTEWAX} (once)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)  # noqa: S603
    subprocess.run(  # noqa: S603
        [str(python), "-m", "pip", "install", "-q", QUIX, BYTEWAX, "-e", str(ROOT)], check=True
    )
    return python


def peer_rung(script: str, *args: str) -> dict[str, float]:
    """One of the peers' scripts in their venv; its JSON result, with events/s."""
    run = subprocess.run(  # noqa: S603 - our own script
        [str(peers_python()), str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=7200,
        check=False,
    )
    found = re.search(r'\{"events":[^}]*\}', run.stdout)
    if found is None:
        raise SystemExit(f"{script} printed no result (exit {run.returncode}):\n{run.stderr[-2000:]}")
    result: dict[str, float] = json.loads(found.group(0))
    return result | {"eps": result["events"] / result["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    if args.events < 50_000:
        parser.error("--events must be at least 50000")
    with tempfile.TemporaryDirectory(prefix="pw-peers-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        settings = local_settings(stack, work, app_id="bench-peers")
        publish_stream(settings, work, args.events)
        bare = faust_rung(settings, args.events)
        table = faust_rung(settings, args.events, "faust_windowed.py")
        table_eager = faust_rung(settings, args.events, "faust_windowed.py", ("aio", "eager"))
        ours = pipeline_rung(settings, args.events, work).eps
        topic = settings.topic("canonical")
        quix = peer_rung("quix_windowed.py", settings.bootstrap_servers, topic, "bench-quix", str(args.events))
        bytewax = peer_rung("bytewax_windowed.py", settings.bootstrap_servers, topic, str(args.events))
    rows = [
        ("bare Faust agent, counting (ceiling)", bare["eps"], "-"),
        ("Faust windowed table", table["eps"], CANNOT["Faust windowed table"]),
        ("Faust windowed table, on our eager consumer", table_eager["eps"], "as above"),
        ("Quix Streams sliding window (row at a time)", quix["eps"], CANNOT["Quix Streams sliding window"]),
        ("Bytewax hopping windows (a batch at a time)", bytewax["eps"], CANNOT["Bytewax hopping windows"]),
        ("parcelwatch pipeline", ours, CANNOT["parcelwatch pipeline"]),
    ]
    command = f"python benchmarks/peers.py --events {args.events}"
    write_section(
        "Peers: the windowed job on Faust's tables, Quix Streams and Bytewax",
        [
            provenance(command),
            "",
            f"{args.events:,} canonical events, 8 partitions, one Tansu broker, one after the other in one run.",
            "",
            "| job | events/s | cannot express |",
            "|---|---:|---|",
            *[f"| {name} | {eps:,.0f} | {cannot} |" for name, eps, cannot in rows],
            "",
            "The Faust, Quix and Bytewax jobs skip zero-mass updates (a sum does not need them), which our"
            " store records to stay exact under redelivery and reordering; they watch the 30-day rules' entity"
            f" types only. Crossings counted: Faust {table['crossings']:,.0f} (updates whose hopping window"
            f" reached the threshold), Quix {quix['crossings']:,.0f} (updates whose sliding sum reached it),"
            f" Bytewax {bytewax['crossings']:,.0f} (closed windows at or over it, in"
            f" {bytewax['entities_over']:,.0f} entities). Quix dropped {quix['late']:,.0f} of its"
            f" {quix['rows']:,.0f} entity rows as later than the 6 h grace: its stream time is per partition of"
            " the re-keyed topic, which rows from different input partitions reach out of order; Bytewax"
            f" dropped {bytewax['late']:,.0f} of its {bytewax['rows']:,.0f}, its event clock being per key;"
            " ours holds one time for the whole group. Quix ran without"
            " `group_by` (a topic of our own instead) because Tansu does not describe topic retention."
            " Bytewax ran one worker (`run_main`) reading the topic to its end (its Kafka source assigns"
            " partitions itself, outside any consumer group)."
            " The Faust jobs run on Faust's own consumer, our pipeline on its eager one"
            " (`streams/eager_consumer.py`); the Faust table is also run on the eager consumer, to set"
            " the two side by side on the same footing."
            f" {QUIX} and {BYTEWAX} ran in benchmarks/.peers-venv.",
        ],
    )
    write_result(
        "peers",
        {
            "bare_faust_eps": bare["eps"],
            "faust_table_eps": table["eps"],
            "faust_table_eager_eps": table_eager["eps"],
            "quix_eps": quix["eps"],
            "bytewax_eps": bytewax["eps"],
            "pipeline_eps": ours,
        },
        command,
    )


if __name__ == "__main__":
    main()
