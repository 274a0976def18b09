"""up / down / status over the selected services; the functions the CLI and fixtures call."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, Protocol

from cdp_tools.stack.config import StackConfig
from cdp_tools.stack.errors import StackError
from cdp_tools.stack.kafka import Kafka
from cdp_tools.stack.redis_cluster import RedisCluster
from cdp_tools.stack.redis_server import Redis
from cdp_tools.stack.service import Say, ServiceState

__all__ = ["ServiceState", "down", "status", "up"]

Only = Literal["kafka", "redis"] | None


def _say(message: str) -> None:
    print(message, flush=True)


class _Service(Protocol):
    name: str

    def refuse_remote(self) -> None: ...
    def start(self, say: Say, adopt: bool = True) -> None: ...
    def stop(self, say: Say) -> None: ...
    def wipe(self, say: Say) -> None: ...
    def states(self) -> list[ServiceState]: ...


@contextmanager
def _services(
    only: Only, redis_cluster: int | None = 0, replicas: int = 0
) -> Iterator[list[_Service]]:
    """The selected services, with the state dir locked: parallel test workers that all call
    up() must not start two brokers over one data dir.

    ``redis_cluster``: N for a cluster of N masters instead of the single Redis (up; a
    redis+cluster:// CDP_REDIS_URL says how many when it is 0), with ``replicas`` of
    each; None
    for the cluster nodes an earlier up started if there are any, else the single Redis
    (down, status: the single Redis's probe would answer on the first node's port)."""
    config = StackConfig.from_env()
    with _locked(config):
        # Redis first: it is up in a blink, so a Kafka failure is reported last and alone.
        redis: _Service = Redis(config)
        size = 0 if redis_cluster is None else redis_cluster or config.redis.cluster
        if size:
            redis = RedisCluster(config, size, replicas)
        elif redis_cluster is None and (recorded := RedisCluster(config)).nodes:
            redis = recorded
        services = [redis, Kafka(config)]
        yield [s for s in services if only in (None, s.name)]


@contextmanager
def _locked(config: StackConfig) -> Iterator[None]:
    """Hold the state dir's lock, or say what to do when the state dir cannot be written."""
    try:
        config.run_dir.mkdir(parents=True, exist_ok=True)
        lock = os.open(config.run_dir / "lock", os.O_WRONLY | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StackError(
            f"cannot write {config.run_dir} ({exc.strerror or exc}): set CDP_STATE_DIR to a "
            "writable directory"
        ) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)


def up(
    only: Only = None,
    fresh: bool = False,
    say: Say = _say,
    redis_cluster: int = 0,
    redis_replicas: int = 0,
) -> None:
    """Start the services where the settings point (local only); ``fresh`` empties them first;
    ``redis_cluster`` N starts a cluster of N Redis masters instead of one Redis, with
    ``redis_replicas`` replicas of each."""
    if redis_replicas and not redis_cluster and not StackConfig.from_env().redis.cluster:
        raise StackError("--redis-replicas needs a Redis Cluster: add --redis-cluster 3")
    with _services(only, redis_cluster, redis_replicas) as services:
        for service in services:
            service.refuse_remote()
        if fresh:
            for service in services:
                service.stop(say)
                service.wipe(say)
        for service in services:
            service.start(say, adopt=not fresh)


def down(only: Only = None, wipe: bool = False, say: Say = _say) -> None:
    """Stop what ``up`` started; ``wipe`` also removes their data (not the downloaded jars)."""
    with _services(only, None) as services:
        for service in reversed(services):
            service.stop(say)
            if wipe:
                service.wipe(say)


def status(only: Only = None) -> list[ServiceState]:
    with _services(only, None) as services:
        return [state for service in services for state in service.states()]
