"""Rules changed while running, through the rules control topic.

The topic has one partition and carries whole rules documents (TOML, as in the rules file).
Every worker reads all of it from the beginning with a consumer outside the consumer group, so
each one sees every message in the same order and a worker that starts later catches up on the
rules in force. A message that is not a valid rules document is refused with the precise error
and the rules in force stay; a valid one applies from the next batch the worker processes.
``parcelwatch rules publish FILE`` validates a file before sending it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from detectors.errors import ConfigError
from detectors.rules import RuleSet, load_rules, parse_rules_text
from streams.errors import StreamsError
from streams.kafka_security import aiokafka_options
from streams.settings import Settings

log = logging.getLogger("parcelwatch.rules")
RULES_KEY = b"rules"  # one key: a compacted topic keeps the latest document


async def ensure_control_topic(settings: Settings) -> str:
    topic = settings.topic("rules.control")
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            topic, num_partitions=1, replication_factor=1, topic_configs={"cleanup.policy": "compact"}
                        )
                    ]
                )
    finally:
        await admin.close()
    return topic


def read_rules_message(value: bytes | None, offset: int) -> RuleSet:
    where = f"rules control message at offset {offset}"
    if value is None:
        raise ConfigError(f"{where}: empty message")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return parse_rules_text(text, where)


async def follow_rules(
    settings: Settings,
    apply: Callable[[RuleSet], Awaitable[None]],
    refused: Callable[[str], None],
    retry_s: float = 2.0,
) -> None:
    """Read the control topic for ever; ``apply`` each valid document, report the others to ``refused``."""
    while True:
        try:
            topic = await ensure_control_topic(settings)
            consumer = AIOKafkaConsumer(**aiokafka_options(settings), group_id=None, enable_auto_commit=False)
            await consumer.start()
            try:
                partition = TopicPartition(topic, 0)
                consumer.assign([partition])
                await consumer.seek_to_beginning(partition)
                async for message in consumer:
                    try:
                        rules = read_rules_message(message.value, message.offset)
                    except ConfigError as exc:
                        refused(str(exc))
                        continue
                    await apply(rules)
            finally:
                await consumer.stop()
        except KafkaError as exc:
            log.warning("rules control topic unavailable; retrying", extra={"error": type(exc).__name__})
            await asyncio.sleep(retry_s)


async def publish_rules(settings: Settings, path: Path) -> RuleSet:
    """Validate ``path`` as the worker would, then send it; a bad file is never sent."""
    rules = load_rules(path)
    topic = await ensure_control_topic(settings)
    producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all")
    try:
        await producer.start()
        await producer.send_and_wait(topic, path.read_bytes(), key=RULES_KEY)
    except KafkaError as exc:
        raise StreamsError(f"cannot publish rules to {topic} at {settings.broker_url}: {exc}") from exc
    finally:
        await producer.stop()
    return rules
