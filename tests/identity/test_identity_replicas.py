"""CDP_REDIS_MIN_REPLICAS: a write that fewer replicas received than asked is reported
as not replicated (so its events stay unacknowledged and it is retried), and its retry
is the idempotent replay of the same write. One Redis and the local cluster here have no
replicas; the failover itself is in tests/faults/test_faults_cluster.py."""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import RedisCluster

from pipeline.identity.commands import GraphStore, NotReplicatedError
from pipeline.identity.connect import Client
from pipeline.identity.replicas import describe, replicas
from tests.identity.support import DEFAULTS, make_event

pytestmark = pytest.mark.integration


async def test_a_write_no_replica_received_is_not_acknowledged(client: Client) -> None:
    waiting = GraphStore(client, DEFAULTS, min_replicas=1, replica_timeout_ms=10)
    event = make_event("e1", 1000, "email:a@example.org", "ecid:c1")
    with pytest.raises(NotReplicatedError, match="0 of CDP_REDIS_MIN_REPLICAS=1"):
        await waiting.stitch([event])
    with pytest.raises(NotReplicatedError):
        await waiting.delete_identities(["ecid:c1"], "r1")

    # The master applied both: the retry replays them.
    plain = GraphStore(client, DEFAULTS)
    again = await plain.stitch([event])
    assert again.outcomes == ["duplicate"]
    assert (await plain.delete_identities(["ecid:c1"], "r1")).deleted == ["ecid:c1"]
    assert await plain.lookup("ecid:c1") is None
    assert await plain.lookup("email:a@example.org") is not None


async def test_the_replicas_redis_has_now_are_counted_per_master(client: Client) -> None:
    """What a worker logs at start and /readyz checks against CDP_REDIS_MIN_REPLICAS:
    the replicas of the master holding the graph, and of every master."""
    now = await replicas(client)
    assert now.graph == 0 and set(now.masters.values()) == {0}
    assert len(now.masters) == (3 if isinstance(client, RedisCluster) else 1)
    said = describe(now, 1)
    assert said.startswith("CDP_REDIS_MIN_REPLICAS=1, and the Redis master holding the graph")
    assert "has 0 replicas now" in said and "not ready until" in said
    assert all(name in said for name in now.masters) == isinstance(client, RedisCluster)
    assert "not ready" not in describe(now, 0)
