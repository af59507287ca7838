"""Retry of the steps that talk to Redis or the broker: the batch, and so its offsets, wait until
the server answers again. Faust acknowledges a batch's events only once the agent is done with
it, so while a step is retried nothing of the batch is committed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from detectors.errors import StoreError

log = logging.getLogger("parcelwatch.retry")
T = TypeVar("T")

# Errors of a server that may come back: unreachable, restarting, timing out, out of memory.
RETRYABLE: tuple[type[BaseException], ...] = (StoreError, RedisError, KafkaError, OSError, ConnectionError)


async def with_retry(
    what: str,
    action: Callable[[], Awaitable[T]],
    max_delay_s: float = 30.0,
    on_error: Callable[[str], None] | None = None,
    on_success: Callable[[], None] | None = None,
) -> T:
    delay = 0.2
    while True:
        try:
            result = await action()
        except RETRYABLE as exc:
            log.warning(
                "%s failed; retrying in %.1f s, offsets are not committed meanwhile",
                what,
                delay,
                extra={"operation": what, "error": type(exc).__name__, "retry_in_s": delay},
            )
            if on_error is not None:
                on_error(what)
        else:
            if on_success is not None:
                on_success()
            return result
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay_s)
