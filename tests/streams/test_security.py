"""Connections with credentials: secrets from the environment or from files, never in a repr;
Redis over TLS with an ACL user, proved by a replay through it; Kafka options for TLS and SASL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import trustme
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr
from pydantic_settings.exceptions import SettingsError

from streams.errors import StreamsError
from streams.kafka_security import aiokafka_options, faust_credentials
from streams.replay import ReplayInput, run_replay, settings_env
from streams.servers import RunningServer, _wait_for_port, free_port, spawn, tansu_broker, tls_proxy
from streams.settings import Settings
from tests.conftest import settings_for
from tests.replay_expectations import STREAM, read_expected
from tests.streams.test_replay import alerts_of

PASSWORD = "correct-horse-battery-staple"  # noqa: S105 - a test's throw-away secret


def test_secrets_come_from_files_and_never_show_in_a_repr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "redis_password"
    secret_file.write_text(PASSWORD + "\n")
    monkeypatch.setenv("PARCELWATCH_REDIS_PASSWORD_FILE", str(secret_file))
    monkeypatch.setenv("PARCELWATCH_REDIS_URL", f"redis://admin:{PASSWORD}@10.0.0.5:6379/0")
    monkeypatch.setenv("PARCELWATCH_KAFKA_SASL_PASSWORD", PASSWORD)
    settings = Settings()
    assert settings.redis_password is not None and settings.redis_password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert "redis://***@10.0.0.5:6379/0" in repr(settings)


def test_an_unreadable_secret_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARCELWATCH_PSEUDONYM_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="PARCELWATCH_PSEUDONYM_SECRET_FILE: cannot read .*missing"):
        Settings()


def test_kafka_options_for_sasl_over_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    settings = Settings(
        broker_url="kafka://b1:9093;b2:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="parcelwatch",
        kafka_sasl_password=SecretStr(PASSWORD),
        kafka_tls_ca_file=ca_file,
    )
    options = aiokafka_options(settings)
    assert options["bootstrap_servers"] == "b1:9093,b2:9093"
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-256")
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("parcelwatch", PASSWORD)
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    credentials = faust_credentials(settings)
    assert credentials is not None and credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-256"


def test_sasl_without_a_login_says_what_to_set() -> None:
    with pytest.raises(StreamsError, match="PARCELWATCH_KAFKA_SASL_USERNAME and PARCELWATCH_KAFKA_SASL_PASSWORD"):
        aiokafka_options(Settings(kafka_security_protocol="SASL_PLAINTEXT"))


def tls_files(workdir: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a certificate it signed for 127.0.0.1: (CA file, certificate, key)."""
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    ca_file, cert, key = workdir / "ca.pem", workdir / "cert.pem", workdir / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    server_cert.private_key_pem.write_to_path(str(key))
    return ca_file, cert, key


@contextlib.contextmanager
def _tls_redis(workdir: Path, extra: tuple[str, ...], tls_port: int) -> Iterator[None]:
    """redis-server listening on ``tls_port`` only (``--port 0``: no plaintext port)."""
    binary = shutil.which("redis-server")
    assert binary is not None
    log = workdir / "redis-tls.log"
    args = [binary, "--port", "0", "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir), "--logfile", str(log)]
    with contextlib.ExitStack() as stack:
        proc = spawn(stack, [*args, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait_for_port(tls_port, proc, "redis-server (TLS)", log)
        yield


@pytest.mark.integration
def test_a_replay_through_redis_over_tls_with_an_acl_user(tansu_srv: RunningServer, tmp_path: Path) -> None:
    """redis-server with TLS only (no plaintext port), the default user off, and a user that may
    touch the run's keys only: the worker, replay and export all get through; nothing else does."""
    ca_file, cert, key = tls_files(tmp_path)
    files = {"ca": ca_file, "cert": cert, "key": key}
    tls_port = free_port()
    base = settings_for(tansu_srv.url, "redis://unused", tmp_path)
    acl = f"parcelwatch on >{PASSWORD} ~{base.redis_prefix}:* &* +@all -@admin -@dangerous +info +dbsize"
    acl_file = tmp_path / "users.acl"
    acl_file.write_text(f"user default off\nuser {acl}\n")
    extra = (
        *("--tls-port", str(tls_port), "--tls-cert-file", str(files["cert"]), "--tls-key-file", str(files["key"])),
        *("--tls-ca-cert-file", str(files["ca"]), "--tls-auth-clients", "no"),
        *("--aclfile", str(acl_file)),
    )
    with _tls_redis(tmp_path, extra, tls_port):
        settings = base.model_copy(
            update={
                "redis_url": f"rediss://127.0.0.1:{tls_port}/0",
                "redis_username": "parcelwatch",
                "redis_password": SecretStr(PASSWORD),
                "redis_tls_ca_file": files["ca"],
            }
        )
        out = tmp_path / "alerts.jsonl"
        run_replay(settings, [ReplayInput(STREAM, "canonical")], out, timeout_s=240)
        assert alerts_of(out) == read_expected()
        assert PASSWORD not in " ".join(f"{k}={v}" for k, v in settings_env(settings).items() if "PASSWORD" not in k)
        # Without TLS there is nothing to talk to; with TLS but no login, the default user is off.
        with pytest.raises(redis.exceptions.ConnectionError):
            redis.Redis(host="127.0.0.1", port=tls_port, socket_timeout=2).ping()
        anonymous = redis.Redis(
            host="127.0.0.1", port=tls_port, ssl=True, ssl_ca_certs=str(files["ca"]), socket_timeout=2
        )
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.ping()
        user = redis.Redis(
            host="127.0.0.1",
            port=tls_port,
            ssl=True,
            ssl_ca_certs=str(files["ca"]),
            username="parcelwatch",
            password=PASSWORD,
        )
        with pytest.raises(redis.exceptions.NoPermissionError):
            user.get("someone-else:key")  # outside the run's key prefix


@pytest.mark.integration
def test_a_replay_through_kafka_over_tls(
    redis_srv: RunningServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every Kafka client of the project (worker, replay, admin look-ups) over TLS, with the
    server's certificate checked against the configured CA. Tansu 0.6 cannot serve TLS itself here
    (its --cert and --key options refuse each other), so socat terminates TLS in front of it."""
    ca_file, cert, key = tls_files(tmp_path)
    tls_port = free_port()
    with (
        tansu_broker(tmp_path, advertised_port=tls_port) as broker,
        tls_proxy(tls_port, broker.port, cert, key, tmp_path),
    ):
        base = settings_for(f"kafka://127.0.0.1:{tls_port}", redis_srv.url, tmp_path)
        settings = base.model_copy(update={"kafka_security_protocol": "SSL", "kafka_tls_ca_file": ca_file})
        out = tmp_path / "alerts.jsonl"
        run_replay(settings, [ReplayInput(STREAM, "canonical")], out, timeout_s=240)
        assert alerts_of(out) == read_expected()
        # A client that does not trust the CA is refused: the check is real.
        stranger = base.model_copy(update={"kafka_security_protocol": "SSL"})
        with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
            asyncio.run(_connect(stranger))
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


async def _connect(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    try:
        await admin.start()
    finally:
        await admin.close()
