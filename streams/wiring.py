"""Build the core's objects from settings: detector, window store, alert store."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from detectors.alert_store import RedisAlertStore
from detectors.entities import Pseudonymizer
from detectors.errors import ConfigError
from detectors.pipeline import Detector
from detectors.reference import load_reference
from detectors.rules import RuleSet, load_rules, parse_duration
from detectors.store_sharded import ShardedWindowStore
from detectors.windows import WindowConfig
from streams.errors import StreamsError
from streams.settings import Settings


def load_ruleset(settings: Settings) -> RuleSet:
    if settings.rules is not None:
        return load_rules(settings.rules)
    from importlib import resources
    from pathlib import Path

    with resources.as_file(resources.files("detectors").joinpath("data/rules.toml")) as path:
        return load_rules(Path(path))


def build_detector(settings: Settings) -> Detector:
    if settings.pseudonym_secret is None:
        raise StreamsError(
            "PARCELWATCH_PSEUDONYM_SECRET is not set: set it to a random string of at least 16 bytes "
            "(e.g. `openssl rand -hex 32`); every worker of a deployment needs the same one"
        )
    try:
        return Detector(
            reference=load_reference(settings.reference),
            rules=load_ruleset(settings),
            pseudonymizer=Pseudonymizer(settings.pseudonym_secret.get_secret_value().encode()),
            include_suspended=settings.include_suspended,
            clear_labels=settings.clear_labels,
        )
    except (ConfigError, ValueError) as exc:
        raise StreamsError(str(exc)) from exc


def window_config(settings: Settings, rules: RuleSet) -> WindowConfig:
    return WindowConfig.for_rules(
        rules.longest_window_s,
        allowed_lateness_s=parse_duration(settings.allowed_lateness, "PARCELWATCH_ALLOWED_LATENESS"),
        max_parcels_per_entity=settings.max_parcels_per_entity,
        reclaim_after_s=settings.alert_reclaim_s,
        parked_ttl_s=None
        if settings.parked_ttl is None
        else parse_duration(settings.parked_ttl, "PARCELWATCH_PARKED_TTL"),
    )


def redis_client(settings: Settings) -> Any:
    """A client with the configured ACL user, password and TLS; the URL may say rediss:// for TLS.
    On Redis Cluster, a cluster client that finds the other nodes from the one the URL names."""
    options: dict[str, Any] = {"socket_timeout": 10, "health_check_interval": 30}
    if settings.redis_username:
        options["username"] = settings.redis_username
    if settings.redis_password is not None:
        options["password"] = settings.redis_password.get_secret_value()
    url = settings.redis_url
    if settings.redis_tls or url.startswith("rediss://"):
        url = "rediss://" + url.split("://", 1)[-1]
        options.update(
            ssl_cert_reqs="required",
            ssl_check_hostname=True,
            ssl_ca_certs=str(settings.redis_tls_ca_file) if settings.redis_tls_ca_file else None,
            ssl_certfile=str(settings.redis_tls_cert_file) if settings.redis_tls_cert_file else None,
            ssl_keyfile=str(settings.redis_tls_key_file) if settings.redis_tls_key_file else None,
        )
    if settings.redis_cluster:
        return RedisCluster.from_url(url, **options)
    return aioredis.from_url(url, **options)


async def redis_memory(client: Any) -> tuple[int, int]:
    """(used_memory, keys) of Redis, summed over the primaries of a cluster."""
    if isinstance(client, RedisCluster):
        infos = await client.info("memory", target_nodes=RedisCluster.PRIMARIES)
        sizes = await client.dbsize(target_nodes=RedisCluster.PRIMARIES)
        keys = sum(sizes.values()) if isinstance(sizes, dict) else int(sizes)
        return sum(int(info["used_memory"]) for info in infos.values()), keys
    info = await client.info("memory")
    return int(info["used_memory"]), int(await client.dbsize())


def shard_advice(settings: Settings) -> list[str]:
    """What is likely a mistake in the shard settings, said as what to change (the worker logs it)."""
    advice = []
    shards, batch = settings.redis_shards, settings.batch_size
    if shards > 1 and not settings.redis_cluster:
        advice.append(
            f"PARCELWATCH_REDIS_SHARDS={shards} on one Redis server spreads nothing and costs more memory and CPU:"
            " set PARCELWATCH_REDIS_CLUSTER=true with a cluster node's URL, or the shards back to 1"
        )
    # several shards: a call to each parcel's home shard, then one to every shard (docs/windows.md)
    calls = shards if shards == 1 else 2 * shards
    if calls / batch > 0.02:
        advice.append(
            f"{shards} shards with batches of {batch} events make up to {calls / batch:.3f} Redis round trips per"
            f" event (two calls per shard per batch): set PARCELWATCH_BATCH_SIZE to {calls * 50} or more for 0.02"
        )
    return advice


def window_store(settings: Settings, client: Any, config: WindowConfig) -> ShardedWindowStore:
    """The window store: one hash slot, or ``redis_shards`` of them (docs/windows.md, "Sharding")."""
    return ShardedWindowStore(client, config, prefix=settings.redis_prefix, shards=settings.redis_shards)


def build_stores(settings: Settings, detector: Detector, client: Any) -> tuple[ShardedWindowStore, RedisAlertStore]:
    return (
        window_store(settings, client, window_config(settings, detector.rules)),
        RedisAlertStore(client, prefix=settings.redis_prefix),
    )
