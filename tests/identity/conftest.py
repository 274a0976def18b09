"""Fixtures of the identity graph tests: a real Redis at CDP_REDIS_URL and a local
3-master Redis Cluster, each flushed per test; ``client`` runs a test on both, and
``target`` a property test's examples, one client for all of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from pipeline.identity.connect import Client, connect
from tests.cluster import flush
from tests.identity.support import Target, redis_url


@pytest.fixture(params=["redis", "cluster"])
def target_url(request: pytest.FixtureRequest) -> str:
    """Where the graph lives: one Redis, or the cluster (every key in one slot there)."""
    return redis_url() if request.param == "redis" else request.getfixturevalue("cluster_url")


@pytest.fixture
async def client(target_url: str) -> AsyncIterator[Client]:
    flush(target_url)
    conn = connect(target_url)
    yield conn
    await conn.aclose()


@pytest.fixture
def target(target_url: str) -> Iterator[Target]:
    with asyncio.Runner() as runner:
        conn = connect(target_url)
        try:
            yield Target(runner, conn)
        finally:
            runner.run(conn.aclose())
