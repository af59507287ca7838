"""Build the core's objects from settings: detector, window store, alert store."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from detectors.alert_store import RedisAlertStore
from detectors.entities import Pseudonymizer
from detectors.errors import ConfigError
from detectors.pipeline import Detector
from detectors.reference import load_reference
from detectors.rules import RuleSet, load_rules, parse_duration
from detectors.store_redis import RedisWindowStore
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
    )


def redis_client(settings: Settings) -> Any:
    return aioredis.from_url(settings.redis_url, socket_timeout=10, health_check_interval=30)


def build_stores(settings: Settings, detector: Detector, client: Any) -> tuple[RedisWindowStore, RedisAlertStore]:
    config = window_config(settings, detector.rules)
    return (
        RedisWindowStore(client, config, prefix=settings.redis_prefix),
        RedisAlertStore(client, prefix=settings.redis_prefix),
    )
