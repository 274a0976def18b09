"""The replicas Redis has now, for CDP_REDIS_MIN_REPLICAS: what a worker logs at start
and what its readiness checks. Writes wait (Redis WAIT) on the master holding the
graph's slot, so that master's count is the one that decides."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio.cluster import RedisCluster

from pipeline.identity.commands import KEYSPACE
from pipeline.identity.connect import Client


@dataclass(frozen=True)
class Replicas:
    graph: int  # replicas of the master holding the graph (the one Redis)
    masters: dict[str, int]  # every master's, by node name; one entry without a cluster


async def replicas(client: Client) -> Replicas:
    """Connected replicas (INFO replication), of every master of a cluster."""
    if not isinstance(client, RedisCluster):
        count = _connected(await client.info("replication"))
        return Replicas(count, {"redis": count})
    infos = await client.info("replication", target_nodes=RedisCluster.PRIMARIES)
    masters = {name: _connected(info) for name, info in sorted(infos.items())}
    node = client.get_node_from_key(KEYSPACE)
    assert node is not None  # the call above initialised the client: every slot has one
    return Replicas(masters[node.name], masters)


def _connected(info: dict[str, object]) -> int:
    return int(str(info.get("connected_slaves", 0)))


def describe(now: Replicas, minimum: int) -> str:
    """One sentence: the setting, the replicas there are, and what follows if too few."""
    said = (
        f"CDP_REDIS_MIN_REPLICAS={minimum}, and the Redis master holding the graph has "
        f"{now.graph} replicas now"
    )
    if len(now.masters) > 1:
        said += " (per master: " + ", ".join(f"{n} {c}" for n, c in now.masters.items()) + ")"
    if now.graph < minimum:
        said += (
            ": each write waits for replicas that are not there and is retried, its events"
            f" unacknowledged; not ready until it has {minimum}"
        )
    return said
