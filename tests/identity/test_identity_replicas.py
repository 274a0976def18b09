"""CDP_REDIS_MIN_REPLICAS: a write that fewer replicas received than asked is reported
as not replicated (so its events stay unacknowledged and it is retried), and its retry
is the idempotent replay of the same write. One Redis and the local cluster here have no
replicas; the failover itself is in tests/faults/test_faults_cluster.py."""

from __future__ import annotations

import pytest

from pipeline.identity.commands import GraphStore, NotReplicatedError
from pipeline.identity.connect import Client
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
