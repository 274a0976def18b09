"""Redis Clusters in tests: a temporary local one (cdp_tools.stack) and a way to empty
one Redis or a cluster."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from cdp_tools.stack.redis_cluster import RedisCluster as LocalCluster
from cdp_tools.stack.redis_cluster import temporary_cluster
from pipeline.identity.connect import is_cluster, parse_cluster_url


@contextmanager
def local_cluster(state_dir: Path, replicas: int = 0) -> Iterator[LocalCluster]:
    """A fresh 3-master cluster (``replicas`` of each master) under ``state_dir``, stopped
    on exit."""
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        pytest.fail(
            "the cluster tests need redis-server and redis-cli (apt-get install redis-server)"
        )
    with temporary_cluster(state_dir, replicas=replicas) as cluster:
        yield cluster


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
