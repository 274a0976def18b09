"""A local Redis Cluster of three masters for the tests that run on one (started with the
stack's own code, on free loopback ports) and a way to empty one Redis or a cluster."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from cdp_tools.stack import proc
from cdp_tools.stack.config import RedisAddress, StackConfig
from cdp_tools.stack.redis_cluster import BUS_OFFSET
from cdp_tools.stack.redis_cluster import RedisCluster as LocalCluster
from pipeline.identity.connect import is_cluster, parse_cluster_url

MASTERS = 3


def free_base(size: int) -> int:
    """A port p with p..p+size-1 and their cluster bus ports (+10000) all free."""
    for _ in range(200):
        base = random.randint(20000, 45000)
        ports = [base + i for i in range(size)]
        if all(proc.port_free(p) and proc.port_free(p + BUS_OFFSET) for p in ports):
            return base
    raise RuntimeError("no free range of ports for a test cluster")


def url_of(cluster: LocalCluster) -> str:
    """The CDP_REDIS_URL of a local cluster."""
    return "redis+cluster://" + ",".join(cluster.addresses)


@contextmanager
def local_cluster(state_dir: Path) -> Iterator[LocalCluster]:
    """A fresh 3-master cluster under ``state_dir``, stopped on exit."""
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        pytest.fail(
            "the cluster tests need redis-server and redis-cli (apt-get install redis-server)"
        )
    port = free_base(MASTERS)
    config = StackConfig(state_dir, "127.0.0.1", 0, RedisAddress("127.0.0.1", port, 0, None))
    cluster = LocalCluster(config, MASTERS)
    quiet = lambda _: None  # noqa: E731
    try:
        cluster.start(quiet)
        yield cluster
    finally:
        cluster.stop(quiet)


def sync_client(url: str) -> redis.Redis | RedisCluster:
    if not is_cluster(url):
        return redis.Redis.from_url(url)
    parsed = parse_cluster_url(url)
    nodes = [ClusterNode(host, port) for host, port in parsed.seeds]
    return RedisCluster(startup_nodes=nodes, password=parsed.password)


def flush(url: str) -> None:
    """Empty the database ``url`` names (every master of a cluster)."""
    client = sync_client(url)
    try:
        client.flushdb()
    finally:
        client.close()
