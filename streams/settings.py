"""Settings, read once at the edge from ``PARCELWATCH_*`` environment variables.

The table in README.md ("Settings") lists the same fields; keep the two together.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from detectors.store_sharded import MAX_SHARDS

# Only for runs that start their own throw-away servers (demo, replay without servers):
# their pseudonyms never leave the machine. A worker against real servers needs a real secret.
DEV_SECRET = "parcelwatch-local-throwaway-secret"  # noqa: S105 - by design, see above


def redact_url(url: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://***@host``: credentials never reach a message."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


SECRETS = ("pseudonym_secret", "redis_password", "kafka_sasl_password")


class SecretFiles(PydanticBaseSettingsSource):
    """``PARCELWATCH_<SECRET>_FILE=/path``: a secret read from a file (Docker and Kubernetes secrets),
    so that it need not sit in the environment. The variable itself, when set, wins."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name in SECRETS:
            variable = f"PARCELWATCH_{name.upper()}_FILE"
            path = os.environ.get(variable)
            if not path:
                continue
            try:
                found[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise SettingsError(f"{variable}: cannot read {path}: {exc.strerror}") from exc
        return found


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARCELWATCH_", frozen=True, extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, SecretFiles(settings_cls), dotenv_settings, file_secret_settings

    broker_url: str = Field("kafka://127.0.0.1:9092", description="Kafka bootstrap, kafka://host:port[;host:port]")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis for windows and alerts (rediss:// for TLS)")
    redis_username: str | None = Field(None, description="Redis ACL user (unset: the default user)")
    redis_password: SecretStr | None = Field(None, description="Redis password (AUTH, or the ACL user's)")
    redis_tls: bool = Field(False, description="TLS to Redis (a rediss:// URL implies it)")
    redis_tls_ca_file: Path | None = Field(None, description="CA file for Redis's certificate (unset: system CAs)")
    redis_tls_cert_file: Path | None = Field(None, description="client certificate for Redis (mutual TLS)")
    redis_tls_key_file: Path | None = Field(None, description="client key for Redis (mutual TLS)")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password")
    kafka_tls_ca_file: Path | None = Field(None, description="CA file for the brokers (unset: system CAs)")
    kafka_tls_cert_file: Path | None = Field(None, description="client certificate for the brokers (mutual TLS)")
    kafka_tls_key_file: Path | None = Field(None, description="client key for the brokers (mutual TLS)")
    rules: Path | None = Field(None, description="rules file (TOML); default: the rules shipped in the package")
    reference: Path | None = Field(None, description="reference data file (TOML); default: shipped data")
    pseudonym_secret: SecretStr | None = Field(None, description="HMAC key for identifiers (>= 16 bytes)")
    app_id: str = Field("parcelwatch", description="Faust app id = Kafka consumer group")
    topic_prefix: str = Field("", description="prefix of every topic name")
    redis_cluster: bool = Field(
        False, description="Redis Cluster: the URL names one node; every key of the deployment shares one hash slot"
    )
    redis_prefix: str = Field("pw", description="prefix of every Redis key")
    redis_shards: int = Field(
        1,
        ge=1,
        le=MAX_SHARDS,
        description="window store shards, each with a hash slot of its own: on Redis Cluster they spread one "
        "deployment's window state over the masters (a multiple of the masters spreads it evenly)",
    )
    partitions: int = Field(8, ge=1, description="partitions of the topics the app creates")
    batch_size: int = Field(1000, ge=1, description="events per detector batch")
    batch_within_s: float = Field(0.2, gt=0, description="longest wait to fill a batch")
    commit_interval_s: float = Field(
        2.8, gt=0, description="how often the worker commits the offsets of applied batches (Faust's default)"
    )
    event_loop: Literal["asyncio", "uvloop"] = Field("asyncio", description="the worker's event loop")
    intake: Literal["batch", "stream"] = Field(
        "batch",
        description="how the detector takes the canonical topic: batch (messages straight from the consumer) or "
        "stream (a Faust agent's stream of events)",
    )
    faust_consumer: Literal["eager", "stock"] = Field(
        "eager", description="Faust's Kafka consumer: eager (no tasks per message) or stock"
    )
    fetch_max_wait_ms: int = Field(
        100, ge=1, le=60_000, description="longest the broker may hold the worker's fetch (eager consumer only)"
    )
    gc_young_threshold: int = Field(
        50_000,
        ge=0,
        description="allocations between the worker's young-generation garbage collections (0: Python's own, 700)",
    )
    allowed_lateness: str = Field("6h", description="how far behind the slowest partition an event may arrive")
    idle_after_s: float = Field(5.0, gt=0, description="a partition read to its end and quiet this long is idle")
    alert_reclaim_s: int = Field(
        60, ge=1, description="an alert a worker got but did not acknowledge this long is published by another"
    )
    max_parcels_per_entity: int = Field(2000, ge=10, description="records kept per entity")
    parked_ttl: str | None = Field(
        None,
        description="how long a parcel that never counted is remembered after its last event, wall clock "
        "(unset: the retention, longest window plus lateness; never longer)",
    )
    include_suspended: bool = Field(False, description="also match suspended control lists (No. 57/2025)")
    clear_labels: bool = Field(False, description="put clear identifiers in alerts (entity_label)")
    metrics_address: str = Field("127.0.0.1", description="address the worker's /metrics binds to")
    metrics_port: int = Field(9464, ge=0, le=65535, description="port of the worker's /metrics (0: off)")
    desk_address: str = Field("127.0.0.1", description="address the analyst desk binds to")
    desk_port: int = Field(8470, ge=1, le=65535, description="port of the analyst desk")
    desk_suppress_days: float = Field(90.0, gt=0, description="how long a false positive silences its rule")
    data_dir: Path = Field(Path(".parcelwatch"), description="Faust's local state directory")
    log_level: str = Field("info", description="crit, error, warn, info or debug")

    @field_validator("redis_prefix")
    @classmethod
    def _one_slot_on_a_cluster(cls, prefix: str, info: ValidationInfo) -> str:
        """On Redis Cluster the window store's script touches the whole deployment's keys at once,
        so they must share a hash slot: the prefix becomes the hash tag (``{pw}``)."""
        if info.data.get("redis_cluster") and not (prefix.startswith("{") and "}" in prefix):
            return "{" + prefix + "}"
        return prefix

    def __repr_args__(self) -> Any:
        # URLs may carry credentials: never in a repr, a log line or a traceback.
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name in ("redis_url", "broker_url") and isinstance(value, str) else value

    @property
    def redis_where(self) -> str:
        """``redis_url`` without its credentials: fit for messages and logs."""
        return redact_url(self.redis_url)

    def topic(self, suffix: str) -> str:
        if suffix in ("alerts", "rules.control"):
            return f"{self.topic_prefix}{suffix}"
        return f"{self.topic_prefix}parcels.{suffix}"

    @property
    def bootstrap_servers(self) -> str:
        """aiokafka form of ``broker_url``."""
        return ",".join(part.split("://", 1)[-1] for part in self.broker_url.replace(";", ",").split(","))
