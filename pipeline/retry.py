"""Waiting out a Redis outage instead of crash-looping or skipping events."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    RedisClusterException,
    TimeoutError,
    TryAgainError,
)

from pipeline import metrics

T = TypeVar("T")
log = logging.getLogger(__name__)

# Errors that mean "Redis is not there right now"; anything else is a bug or bad data. On a
# cluster: slots without a master during a failover, and no node reachable at all.
TRANSIENT = (
    ConnectionError,
    TimeoutError,
    BusyLoadingError,
    OSError,
    ClusterDownError,
    TryAgainError,
    RedisClusterException,
)


async def until_redis_answers(
    operation: str, call: Callable[[], Awaitable[T]], *, max_delay_s: float = 2.0
) -> T:
    """Run ``call`` until Redis answers; the caller's offsets stay uncommitted meanwhile.

    Cancellation (worker shutdown) propagates, so nothing of the batch is acknowledged.
    """
    delay = 0.05
    while True:
        started = time.perf_counter()
        try:
            result = await call()
        except TRANSIENT as exc:
            metrics.REDIS_ERRORS.labels(operation).inc()
            metrics.UP.labels("redis").set(0)
            log.warning(
                "redis unavailable during %s (%s); retrying in %.2fs", operation, exc, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay_s)
            continue
        metrics.REDIS_DURATION.labels(operation).observe(time.perf_counter() - started)
        metrics.UP.labels("redis").set(1)
        return result
