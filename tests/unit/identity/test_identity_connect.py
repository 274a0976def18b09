"""CDP_REDIS_URL: one Redis, or a Redis Cluster named by its seeds."""

from __future__ import annotations

import re

import pytest
import redis.asyncio
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError

from pipeline.identity.commands import GraphStore
from pipeline.identity.config import load
from pipeline.identity.connect import ClusterUrl, RedisUrlError, connect, parse_cluster_url


def test_cluster_url_with_seeds_credentials_and_tls() -> None:
    assert parse_cluster_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001") == ClusterUrl(
        [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    )
    assert parse_cluster_url(
        "rediss+cluster://app:p%40ss@r1.example:6380/0?ssl_ca_certs=/etc/ca.pem"
    ) == ClusterUrl([("r1.example", 6380)], True, "app", "p@ss", "/etc/ca.pem")
    assert parse_cluster_url("redis+cluster://:pw@[::1]:7000").seeds == [("::1", 7000)]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://h:7000/2", "database 0 only"),
        ("redis+cluster://h", "not host:port"),
        ("redis+cluster://h:7000,h2", "not host:port"),
        ("redis+cluster://", "names no cluster node"),
        ("redis+cluster://h:7000?socket_timeout=1", "unknown option"),
        ("redis://h:7000", "not a redis+cluster://"),
    ],
)
def test_bad_cluster_urls_say_how_to_write_them(url: str, says: str) -> None:
    with pytest.raises(RedisUrlError, match=re.escape(says)):
        parse_cluster_url(url)


async def test_the_scheme_chooses_the_client() -> None:
    single = connect("redis://127.0.0.1:1/0")
    cluster = connect("redis+cluster://127.0.0.1:1,127.0.0.1:2")
    assert isinstance(single, redis.asyncio.Redis) and isinstance(cluster, RedisCluster)
    assert [(n.host, n.port) for n in cluster.startup_nodes] == [
        ("127.0.0.1", 1),
        ("127.0.0.1", 2),
    ]
    await single.aclose()
    await cluster.aclose()


async def test_a_cluster_connection_reset_mid_call_reads_as_a_connection_error() -> None:
    """redis-py 8.1's cluster client can fail a call with an AttributeError from a
    connection another call reset: the store turns it into the ConnectionError that
    callers wait out (pipeline/retry.py) instead of a crash."""
    store = GraphStore(connect("redis+cluster://127.0.0.1:1"), load())
    store._cluster_ready = True  # no cluster to initialise here

    async def reset(**_: object) -> None:
        raise AttributeError("'NoneType' object has no attribute 'writelines'")

    store._scripts["lookup"] = reset  # type: ignore[assignment]
    with pytest.raises(ConnectionError, match="reset mid-call"):
        await store.lookup("email:a@example.org")
    await store.redis.aclose()


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "redis+cluster://127.0.0.1:1"])
async def test_a_transport_closed_under_a_write_reads_as_a_connection_error(url: str) -> None:
    """uvloop raises a RuntimeError, not a ConnectionError, when redis-py writes to a
    transport the peer closed (a cluster node killed mid-handshake): seen crashing the
    publish agent in the failover fault test. Other errors stay what they are."""
    store = GraphStore(connect(url), load())
    store._cluster_ready = True
    failing = _Failing()
    store._scripts["lookup"] = failing  # type: ignore[assignment]
    store._pipe = None if store._pipe is None else failing  # type: ignore[assignment]
    failing.error = RuntimeError(
        "unable to perform operation on <TCPTransport closed=True reading=False 0x55>; "
        "the handler is closed"
    )
    with pytest.raises(ConnectionError, match="closed mid-call"):
        await store.lookup("email:a@example.org")
    failing.error = RuntimeError("a bug")
    with pytest.raises(RuntimeError, match="a bug"):
        await store.lookup("email:a@example.org")
    if url.startswith("redis://"):  # on one Redis an AttributeError is a bug, not a reset
        failing.error = AttributeError("a bug")
        with pytest.raises(AttributeError):
            await store.lookup("email:a@example.org")
    await store.redis.aclose()


class _Failing:
    """A script, and the pipelined connection of one Redis, raising ``error``."""

    sha = "0" * 40
    error: Exception = RuntimeError()

    async def __call__(self, **_: object) -> None:
        raise self.error

    async def evalsha(self, *_: object) -> None:
        raise self.error
