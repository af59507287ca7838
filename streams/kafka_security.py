"""How every Kafka client of the project connects: plaintext, TLS, SASL, or SASL over TLS.

One place builds the options, so that the Faust app, the rules follower, replay and the admin
look-ups all connect the same way, with secrets taken from settings and never logged.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from streams.errors import StreamsError
from streams.settings import Settings


def tls_context(ca_file: Any, cert_file: Any, key_file: Any) -> ssl.SSLContext:
    """Verifies the server's certificate and host name (system CAs unless ``ca_file``); presents a
    client certificate when ``cert_file`` is given (mutual TLS)."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        if cert_file:
            context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise StreamsError(f"cannot set up TLS from the configured certificate files: {exc}") from exc
    return context


def _uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def _uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol.startswith("SASL_")


def _sasl_login(settings: Settings) -> tuple[str, str]:
    if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
        raise StreamsError(
            f"PARCELWATCH_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs "
            "PARCELWATCH_KAFKA_SASL_USERNAME and PARCELWATCH_KAFKA_SASL_PASSWORD (or _PASSWORD_FILE)"
        )
    return settings.kafka_sasl_username, settings.kafka_sasl_password.get_secret_value()


def kafka_context(settings: Settings) -> ssl.SSLContext | None:
    if not _uses_tls(settings):
        return None
    return tls_context(settings.kafka_tls_ca_file, settings.kafka_tls_cert_file, settings.kafka_tls_key_file)


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if _uses_tls(settings):
        options["ssl_context"] = kafka_context(settings)
    if _uses_sasl(settings):
        username, password = _sasl_login(settings)
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism, sasl_plain_username=username, sasl_plain_password=password
        )
    return options


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """``broker_credentials`` of the Faust app."""
    if _uses_sasl(settings):
        username, password = _sasl_login(settings)
        return faust.SASLCredentials(
            username=username,
            password=password,
            ssl_context=kafka_context(settings),
            mechanism=settings.kafka_sasl_mechanism,
        )
    if _uses_tls(settings):
        return faust.SSLCredentials(kafka_context(settings))
    return None
