"""What a replay leaves behind, read off the real servers, so that a run with a fault in it can be
compared with an uninterrupted run of the same stream.

The window state is read key by key with the run's prefix removed: two runs with the same
pseudonym secret and the same stream must leave the same records, the same cluster map and
the same alerts, whatever crashed in between.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from detectors.store_redis import parked_records
from streams.replay import alert_ids, committed_progress
from streams.settings import Settings
from streams.topic_reader import read_topic
from streams.wiring import load_ruleset, redis_client, window_config


@dataclass(frozen=True)
class Outcome:
    alert_ids: frozenset[str]  # the alert store
    published: tuple[str, ...]  # alert ids on the alerts topic, duplicates kept
    windows: dict[str, Any]  # every window record and the cluster map, keys without the run's prefix

    def same_as(self, other: Outcome, republished_ok: bool = False) -> list[str]:
        """What differs, in words (empty when nothing does).

        ``republished_ok``: an alert on the alerts topic twice is no difference (the broker died
        between storing a publish and answering it, so the publish was retried)."""
        diffs = []
        if self.alert_ids != other.alert_ids:
            diffs.append(
                f"alert store: {len(self.alert_ids - other.alert_ids)} more, {len(other.alert_ids - self.alert_ids)} fewer"
            )
        if set(self.published) != set(other.published):
            diffs.append("alerts topic: another set of alert ids")
        dupes = len(self.published) - len(set(self.published))
        if dupes and not republished_ok:
            diffs.append(f"alerts topic: {dupes} alerts published twice")
        if self.windows != other.windows:
            keys = set(self.windows) ^ set(other.windows)
            changed = [k for k in set(self.windows) & set(other.windows) if self.windows[k] != other.windows[k]]
            diffs.append(f"window state: {len(keys)} keys only on one side, {len(changed)} keys differ")
            for key in sorted(keys)[:3]:
                diffs.append(f"  {key}: {self.windows.get(key)!r:.300} vs {other.windows.get(key)!r:.300}")
            for key in sorted(changed)[:3]:
                mine, theirs = self.windows[key], other.windows[key]
                if isinstance(mine, list) and isinstance(theirs, list):
                    mine, theirs = [x for x in mine if x not in theirs], [x for x in theirs if x not in mine]
                diffs.append(f"  {key}: {mine!r:.400} vs {theirs!r:.400}")
        return diffs


async def _window_state(settings: Settings) -> dict[str, Any]:
    """Per entity, its live records: those no later event can prune; and every parked record.

    A record is pruned when its anchor falls below (horizon at the entity's last update) -
    retention, and that horizon depends on how the stream was batched. Records anchored at or
    after (the entity's greatest accepted event time) - retention are never pruned, whatever the
    batching: those are the windows that must come out the same.
    """
    client = redis_client(settings)
    prefix = f"{settings.redis_prefix}:"
    retention_ms = window_config(settings, load_ruleset(settings)).retention_s * 1000
    state: dict[str, Any] = {}
    try:
        async for raw in client.scan_iter(match=f"{prefix}*:z", count=1000):
            base = raw.decode()[: -len(":z")]
            watermark = await client.hget(f"{base}:r", "wm")
            anchors = await client.zrange(f"{base}:z", 0, -1, withscores=True)
            if watermark is None or not anchors:
                continue
            live = [(pid, anchor) for pid, anchor in anchors if anchor >= float(watermark) - retention_ms]
            records = await client.hmget(f"{base}:r", [pid for pid, _ in live]) if live else []
            if live:
                state[base[len(prefix) :]] = sorted(zip(live, records, strict=True))
        state["cl:parent"] = await client.hgetall(f"{prefix}cl:parent")
        # Parked records (parcels that never counted for an entity) are never pruned by event time.
        parked = [raw async for raw in client.scan_iter(match=f"{prefix}p:*", count=1000)]
        for start in range(0, len(parked), 1000):
            pipe = client.pipeline(transaction=False)
            for key in parked[start : start + 1000]:
                pipe.get(key)
            for key, raw in zip(parked[start : start + 1000], await pipe.execute(), strict=True):
                state[key.decode()[len(prefix) :]] = sorted(parked_records(raw).items())
    finally:
        await client.aclose()
    return state


async def _published(settings: Settings) -> tuple[str, ...]:
    values = await read_topic(settings, settings.topic("alerts"))
    return tuple(sorted(orjson.loads(value)["alert_id"] for value in values))


async def _outcome(settings: Settings) -> Outcome:
    stored = frozenset(await alert_ids(settings))
    return Outcome(stored, await _published(settings), await _window_state(settings))


def outcome(settings: Settings) -> Outcome:
    return asyncio.run(_outcome(settings))


def committed(settings: Settings) -> tuple[int, int]:
    """(offsets the consumer group has committed, messages in the input topics)."""
    return asyncio.run(committed_progress(settings))


def wait_for(what: str, condition: Callable[[], bool], timeout_s: float, every_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(every_s)


def metric_samples(port: int, name: str) -> list[tuple[str, float]]:
    """(labels, value) of every sample of ``name`` on a worker's /metrics; none while it is not serving."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # noqa: S310
            text = response.read().decode()
    except OSError:
        return []
    samples = []
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) :].rsplit(" ", 1)
            samples.append((labels, float(value)))
    return samples


def metric_total(port: int, name: str) -> float:
    return sum(value for _, value in metric_samples(port, name))
