"""Detection quality against ground truth: our detector beside the naive rule, per tactic.

    .venv/bin/python benchmarks/quality.py [--seeds 1 2 3] [--heldout-seeds 11 12] [--days 60] [--scale 4]

For each seed it simulates a stream (scenario ``default`` for the tuning seeds, ``heldout``, with
another mix, sizes and dates, for the held-out seeds), replays it through the real pipeline
(``parcelwatch replay``: its own Tansu broker, Faust worker and redis-server) and scores the
alerts against the ground truth written beside the stream. ``--in-process`` runs the same core
in one process with the memory store instead (the reference the pipeline is tested equal to),
for quick exploration; the table says which was used.

The naive baseline is the rule a team would write first: SUM(weight) per sender phone or per
recipient over 7 days at or above 100 kg, one alert per entity, re-raised when the sum doubles;
each parcel counted once at its best-known weight.

* An alert is *right* when most of its evidence parcels belong to one campaign; it then detects
  that campaign at its last event time.
* Recall: campaigns detected / campaigns. Precision: right alerts / alerts.
* False alerts per million legitimate parcels.
* Leakage: hidden mass shipped up to the first right alert, as a share of the campaign's mass
  (1.0 for a campaign never detected).

Writes the tables into BENCHMARKS.md; the last line printed is one JSON object with our
detector's overall ``recall``, ``precision``, ``false_alerts_per_million`` and ``median_leakage``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from detectors.entities import Pseudonymizer
from detectors.offline import detect_in_order, parse_valid
from detectors.pipeline import Detector
from detectors.reference import load_reference
from detectors.rules import load_rules
from detectors.store_memory import MemoryWindowStore
from detectors.windows import WindowConfig
from streams.simulate import simulate

sys.path.insert(0, str(Path(__file__).parent))
from report import ROOT, provenance, write_section  # noqa: E402 - benchmarks are scripts, not a package

NAIVE_WINDOW_MS = 7 * 86_400_000
NAIVE_THRESHOLD_KG = 100.0
SECRET = "quality-benchmark-secret"  # noqa: S105 - pseudonyms of simulated people
RULES = ROOT / "detectors" / "data" / "rules.toml"


@dataclass(frozen=True)
class Alert:
    parcels: tuple[str, ...]
    at_ms: int  # event time of the window end that raised it


@dataclass
class Score:
    """Counts for one detector over one or more streams, per tactic and overall."""

    campaigns: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    detected: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    right: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    leakage: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    alerts: int = 0
    wrong: int = 0
    legitimate_parcels: int = 0

    def add(self, truth: dict[str, Any], alerts: list[Alert]) -> None:
        owner = {p: c["id"] for c in truth["campaigns"] for p in c["parcel_ids"]}
        tactic = {c["id"]: c["tactic"] for c in truth["campaigns"]}
        first_hit: dict[str, int] = {}
        self.alerts += len(alerts)
        self.legitimate_parcels += truth["legitimate_parcels"]
        for alert in alerts:
            counts: dict[str, int] = defaultdict(int)
            for parcel in alert.parcels:
                counts[owner.get(parcel, "")] += 1
            best, n = max(counts.items(), key=lambda kv: kv[1]) if counts else ("", 0)
            if best and n * 2 > len(alert.parcels):
                self.right[tactic[best]] += 1
                first_hit[best] = min(first_hit.get(best, alert.at_ms), alert.at_ms)
            else:
                self.wrong += 1
        for campaign in truth["campaigns"]:
            t = campaign["tactic"]
            self.campaigns[t] += 1
            total = sum(kg for _, _, kg in campaign["parcels"])
            if campaign["id"] in first_hit:
                self.detected[t] += 1
                shipped = sum(kg for _, at, kg in campaign["parcels"] if at <= first_hit[campaign["id"]])
                self.leakage[t].append(shipped / total if total else 0.0)
            else:
                self.leakage[t].append(1.0)

    def overall(self) -> dict[str, float]:
        campaigns = sum(self.campaigns.values())
        leakages = [x for values in self.leakage.values() for x in values]
        return {
            "recall": round(sum(self.detected.values()) / campaigns, 3) if campaigns else 0.0,
            "precision": round((self.alerts - self.wrong) / self.alerts, 3) if self.alerts else 0.0,
            "false_alerts_per_million": round(self.wrong * 1e6 / max(1, self.legitimate_parcels), 1),
            "median_leakage": round(statistics.median(leakages), 3) if leakages else 1.0,
            "alerts": self.alerts,
            "campaigns": campaigns,
            "right_alerts_per_detected_campaign": round(
                (self.alerts - self.wrong) / max(1, sum(self.detected.values())), 1
            ),
        }

    def short_of_targets(self) -> list[str]:
        """Tactics below the issue's targets (recall >= 0.95, median leakage <= 0.15), in words."""
        out = []
        for tactic in sorted(self.campaigns):
            recall = self.detected[tactic] / self.campaigns[tactic]
            leakage = statistics.median(self.leakage[tactic])
            if recall < 0.95 or leakage > 0.15:
                out.append(f"- `{tactic}`: recall {recall:.2f}, median leakage {leakage:.2f}")
        return out


CAVEATS = [
    "What these numbers do not prove:",
    "",
    "- The streams come from our own simulator (`streams/simulate.py`), written by the same team as the detector:",
    "  the campaigns follow the tactics in DOMAIN.md and the look-alikes the honest trades it names, but a",
    "  detector tuned on a simulator can only be as right as the simulator is realistic. Real feeds will hold",
    "  honest shippers and tactics the simulator does not.",
    "- Thresholds and scoring were set on the tuning seeds (1, 2, 3, scenario `default`) only. The held-out",
    "  seeds run scenario `heldout` (`streams/simulate.py`, SCENARIOS): another mix of campaigns, other",
    "  campaign sizes, later starts and more late deliveries. Held-out seeds 4 and 7 to 10 were looked at",
    "  before later changes (identity clusters, cluster rules, the single-heavy-parcel rule, names within a",
    "  building as identifiers), which were then tried on the tuning seeds only; seeds 11 and 12 were not run",
    "  before this table.",
    "- Leakage counts the event time of the window end that raised the first right alert; the alert",
    "  itself waits for the allowed lateness (PARCELWATCH_ALLOWED_LATENESS, event time) on top.",
    "- Several right alerts per campaign (one per entity type and episode) are counted as right; an analyst",
    "  still reads each of them.",
]


def naive_alerts(lines: list[bytes]) -> list[Alert]:
    """SUM(weight) per sender phone or recipient over 7 days >= 100 kg; re-raised when the sum doubles."""
    best: dict[str, tuple[int, int, float, str, str]] = {}  # parcel -> (rank, first ms, weight, phone, recipient)
    cancelled: set[str] = set()
    for event in parse_valid(lines):
        key = event.parcel_key
        if event.event_type == "cancelled":
            cancelled.add(key)
            continue
        rank = 2 if event.measured_weight_kg is not None else 1
        weight = event.weight_kg or 0.0
        recipient = f"{event.recipient.name}|{event.recipient.phone}"
        old = best.get(key)
        first = min(old[1], event.event_time_ms) if old else event.event_time_ms
        if old is None or rank >= old[0]:
            best[key] = (rank, first, weight, event.sender.phone or "", recipient)
        else:
            best[key] = (old[0], first, old[2], old[3], old[4])
    parcels = sorted((v[1], k, v[2], v[3], v[4]) for k, v in best.items() if k not in cancelled)
    windows: dict[str, deque[tuple[int, str, float]]] = defaultdict(deque)
    sums: dict[str, float] = defaultdict(float)
    last_alert: dict[str, float] = {}
    alerts = []
    for at, key, weight, phone, recipient in parcels:
        for entity in (f"phone:{phone}", f"recipient:{recipient}"):
            window = windows[entity]
            window.append((at, key, weight))
            sums[entity] += weight
            while window[0][0] <= at - NAIVE_WINDOW_MS:
                sums[entity] -= window.popleft()[2]
            target = 2 * last_alert[entity] if entity in last_alert else NAIVE_THRESHOLD_KG
            if sums[entity] >= target:
                last_alert[entity] = sums[entity]
                alerts.append(Alert(tuple(k for _, k, _ in window), at))
    return alerts


def _alert(document: dict[str, Any]) -> Alert:
    at = datetime.fromisoformat(document["last_event_time"].replace("Z", "+00:00"))
    return Alert(tuple(document["parcel_ids"]), int(at.timestamp() * 1000))


def our_alerts(stream: Path, work: Path, in_process: bool) -> list[Alert]:
    if in_process:
        detector = Detector(load_reference(), load_rules(RULES), Pseudonymizer(SECRET.encode()))
        store = MemoryWindowStore(WindowConfig.for_rules(detector.rules.longest_window_s))
        events = parse_valid(stream.read_bytes().splitlines())
        documents = asyncio.run(detect_in_order(events, detector, store, store.config.allowed_lateness_s))
        return [_alert(d) for d in documents]
    out = work / f"{stream.stem}.alerts.jsonl"
    env = os.environ | {"PARCELWATCH_SECRET": SECRET}
    command = [sys.executable, "-m", "streams.cli", "replay", str(stream), "--alerts-out", str(out)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"replay of {stream} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return [_alert(orjson.loads(line)) for line in out.read_bytes().splitlines() if line.strip()]


def _table(ours: Score, naive: Score) -> list[str]:
    rows = [
        "| tactic | campaigns | recall (ours / naive) | right alerts (ours / naive) | median leakage (ours / naive) |",
        "|---|---:|---:|---:|---:|",
    ]
    for tactic in sorted(ours.campaigns):
        n = ours.campaigns[tactic]
        rows.append(
            f"| {tactic} | {n} | {ours.detected[tactic] / n:.2f} / {naive.detected[tactic] / n:.2f} "
            f"| {ours.right[tactic]} / {naive.right[tactic]} "
            f"| {statistics.median(ours.leakage[tactic]):.2f} / {statistics.median(naive.leakage[tactic]):.2f} |"
        )
    a, b = ours.overall(), naive.overall()
    rows += [
        "",
        "| overall | ours | naive |",
        "|---|---:|---:|",
        *(f"| {k} | {a[k]} | {b[k]} |" for k in a),
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3], help="tuning seeds, scenario default")
    parser.add_argument("--heldout-seeds", type=int, nargs="*", default=[11, 12], help="scenario heldout")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--scale", type=float, default=4.0, help="legitimate background volume")
    parser.add_argument("--in-process", action="store_true", help="memory store in one process, no broker")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    args = parser.parse_args()

    runs = [(seed, "default") for seed in args.seeds] + [(seed, "heldout") for seed in args.heldout_seeds]
    pooled_ours, pooled_naive = Score(), Score()
    per_scenario: dict[str, tuple[Score, Score]] = {}
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pw-quality-") as tmp:
        for seed, scenario in runs:
            stream = Path(tmp) / f"{scenario}-{seed}.jsonl"
            truth = simulate(seed=seed, days=args.days, out=stream, scale=args.scale, scenario=scenario)
            started = time.perf_counter()
            ours = our_alerts(stream, Path(tmp), args.in_process)
            seconds = time.perf_counter() - started
            naive = naive_alerts(stream.read_bytes().splitlines())
            ours_score, naive_score = per_scenario.setdefault(scenario, (Score(), Score()))
            for score, alerts in ((ours_score, ours), (pooled_ours, ours), (naive_score, naive), (pooled_naive, naive)):
                score.add(truth, alerts)
            one_ours, one_naive = Score(), Score()
            one_ours.add(truth, ours)
            one_naive.add(truth, naive)
            o, n = one_ours.overall(), one_naive.overall()
            lines.append(
                f"| {scenario} | {seed} | {truth['events']} | {truth['legitimate_parcels']} | {o['campaigns']} "
                f"| {o['recall']} / {n['recall']} | {o['precision']} / {n['precision']} "
                f"| {o['false_alerts_per_million']} / {n['false_alerts_per_million']} "
                f"| {o['median_leakage']} / {n['median_leakage']} | {seconds:.0f} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    how = (
        "in one process (memory store)" if args.in_process else "through the real pipeline (Tansu, Faust worker, Redis)"
    )
    command = "python benchmarks/quality.py " + " ".join(sys.argv[1:])
    body = [
        provenance(command.strip()),
        "",
        f"Alerts {how}; {args.days} days of event time per stream, background scale {args.scale}.",
        "Each cell: ours / naive (SUM(weight) per sender phone or recipient over 7 days >= 100 kg).",
        "",
        "| scenario | seed | events | legitimate parcels | campaigns | recall | precision | false alerts per M "
        "| median leakage | replay s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *lines,
    ]
    for scenario, (ours_score, naive_score) in per_scenario.items():
        body += ["", f"### Scenario `{scenario}`, per tactic", "", *_table(ours_score, naive_score)]
    body += ["", "### All runs pooled", "", *_table(pooled_ours, pooled_naive)]
    for scenario, (ours_score, _naive) in per_scenario.items():
        short = ours_score.short_of_targets()
        body += ["", f"Tactics short of a target in scenario `{scenario}` (ours):", "", *(short or ["- none"])]
    n = pooled_ours.legitimate_parcels
    body += [
        "",
        *CAVEATS,
        f"- The false-alert rate rests on {n} legitimate parcels in all: one false alert would read as "
        f"{1e6 / max(1, n):.1f} per million; zero means fewer than that, not none.",
    ]
    if args.no_write:
        print("\n".join(body))
    else:
        write_section("Detection quality", body)
    overall = pooled_ours.overall()
    print(json.dumps({k: overall[k] for k in ("recall", "precision", "false_alerts_per_million", "median_leakage")}))


if __name__ == "__main__":
    main()
