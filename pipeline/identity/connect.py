"""The Redis client that ``CDP_REDIS_URL`` names: one Redis, or a Redis Cluster.

``redis://`` / ``rediss://`` name one Redis (redis-py's URL form). A cluster is named by
its seed nodes, ``redis+cluster://[user:password@]host:port[,host:port...][/0]``, or
``rediss+cluster://`` for TLS; redis-py's ``RedisCluster`` finds the other nodes from
them and follows the slots as they move.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

import redis.asyncio
from redis.asyncio.cluster import ClusterNode, RedisCluster

Client = redis.asyncio.Redis | RedisCluster
CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # scheme -> TLS


class RedisUrlError(ValueError):
    """CDP_REDIS_URL cannot be used; the message says how to write it."""


@dataclass(frozen=True)
class ClusterUrl:
    seeds: list[tuple[str, int]]
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_certs: str | None = None  # ?ssl_ca_certs=/path/ca.pem: a private CA (TLS)


def is_cluster(url: str) -> bool:
    return url.partition("://")[0] in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> ClusterUrl:
    """The seeds and credentials of a ``redis+cluster://`` URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in CLUSTER_SCHEMES:
        raise RedisUrlError(f"{url!r} is not a redis+cluster:// or rediss+cluster:// URL")
    # urlsplit takes one host only: split the seeds off by hand, after the credentials.
    location, _, query = rest.partition("?")
    location, _, path = location.partition("/")
    credentials, _, hosts = location.rpartition("@")
    if path not in ("", "0"):
        raise RedisUrlError(
            f"a Redis Cluster has database 0 only, not /{path}: drop it from CDP_REDIS_URL"
        )
    seeds = []
    for seed in filter(None, hosts.split(",")):
        host, colon, port = seed.rpartition(":")
        if not colon or not port.isdigit() or not host:
            raise RedisUrlError(
                f"seed {seed!r} of CDP_REDIS_URL is not host:port; write "
                "redis+cluster://host1:port1,host2:port2"
            )
        seeds.append((host.strip("[]"), int(port)))
    if not seeds:
        raise RedisUrlError("CDP_REDIS_URL names no cluster node: redis+cluster://host:port")
    options = dict(urllib.parse.parse_qsl(query))
    if unknown := sorted(options.keys() - {"ssl_ca_certs"}):
        raise RedisUrlError(f"CDP_REDIS_URL: unknown option(s) {unknown} for a cluster URL")
    user, _, password = credentials.partition(":")
    unquote = urllib.parse.unquote
    return ClusterUrl(
        seeds,
        CLUSTER_SCHEMES[scheme],
        unquote(user) or None,
        unquote(password) or None,
        options.get("ssl_ca_certs"),
    )


def connect(url: str) -> Client:
    """A client for ``url``; it connects on first use."""
    if not is_cluster(url):
        return redis.asyncio.Redis.from_url(url)
    parsed = parse_cluster_url(url)
    extra: dict[str, Any] = {}
    if parsed.tls:
        extra = {"ssl": True, "ssl_ca_certs": parsed.ca_certs}
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parsed.seeds],
        username=parsed.username,
        password=parsed.password,
        **extra,
    )
