"""Fixtures of the identity graph tests: a real Redis at CDP_REDIS_URL, flushed per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from tests.identity.support import redis_url


@pytest.fixture
async def client() -> AsyncIterator[redis.asyncio.Redis]:
    url = redis_url()
    conn = redis.asyncio.Redis.from_url(url)
    try:
        await conn.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis at CDP_REDIS_URL={url} is unreachable: {exc}")
    await conn.flushdb()
    yield conn
    await conn.aclose()
