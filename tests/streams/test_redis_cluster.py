"""The window store on a real three-master Redis Cluster: the recorded stream gives exactly the
alerts it gives on a single redis-server (tests/streams/test_replay.py holds those), in one hash
slot or sharded over the masters."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from detectors.store_sharded import shard_prefixes
from streams.replay import ReplayInput, run_replay
from streams.servers import RunningServer, redis_cluster
from streams.settings import Settings
from streams.wiring import redis_client, redis_memory
from tests.conftest import settings_for
from tests.replay_expectations import STREAM, read_expected, stream_counts
from tests.streams.test_replay import alerts_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningServer]:
    with redis_cluster(masters=3) as node:
        yield node


def test_recorded_stream_on_a_redis_cluster_gives_the_single_redis_alerts(
    cluster: RunningServer, tansu_srv: RunningServer, tmp_path: Path
) -> None:
    plain = settings_for(tansu_srv.url, cluster.url, tmp_path)
    settings = Settings(**(plain.model_dump() | {"redis_cluster": True}))
    assert settings.redis_prefix == "{" + plain.redis_prefix + "}"
    out = tmp_path / "alerts.jsonl"
    summary = run_replay(settings, [ReplayInput(STREAM, "canonical")], out, timeout_s=300)
    assert alerts_of(out) == read_expected()
    assert summary.events_read == stream_counts()[0]
    assert summary.dead_letter_reasons == {"bad_time": 1, "not_json": 1, "not_object": 1, "schema": 2}

    async def layout() -> tuple[set[int], int, int]:
        client = redis_client(settings)
        try:
            assert isinstance(client, RedisCluster)
            keys = [key async for key in client.scan_iter(match=f"{settings.redis_prefix}*", count=1000)]
            slots = {int(await client.cluster_keyslot(key)) for key in keys[:200]}
            _, total = await redis_memory(client)
            return slots, len(keys), total
        finally:
            await client.aclose()

    slots, ours, total = asyncio.run(layout())
    assert len(slots) == 1, "every key of the deployment in one hash slot"
    assert ours > 1000 and total >= ours


def test_six_window_store_shards_spread_a_deployment_over_three_masters_with_the_same_alerts(
    cluster: RunningServer, tansu_srv: RunningServer, tmp_path: Path
) -> None:
    plain = settings_for(tansu_srv.url, cluster.url, tmp_path)
    settings = Settings(**(plain.model_dump() | {"redis_cluster": True, "redis_shards": 6}))
    out = tmp_path / "alerts.jsonl"
    summary = run_replay(settings, [ReplayInput(STREAM, "canonical")], out, timeout_s=300)
    assert alerts_of(out) == read_expected()
    assert summary.events_read == stream_counts()[0]

    async def per_master() -> dict[str, int]:
        client = redis_client(settings)
        try:
            assert isinstance(client, RedisCluster)
            await client.initialize()  # the slot map, for get_node_from_key
            keys: dict[str, int] = {}
            for prefix in shard_prefixes(settings.redis_prefix, 6):
                node = client.get_node_from_key(prefix).name
                found = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
                keys[node] = keys.get(node, 0) + len(found)
            return keys
        finally:
            await client.aclose()

    keys = asyncio.run(per_master())
    assert len(keys) == 3 and min(keys.values()) > 0.15 * sum(keys.values()), f"keys per master: {keys}"
