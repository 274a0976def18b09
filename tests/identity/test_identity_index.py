"""The index bucket computed by the caller (arguments.bucket) is the script's own
(lua/includes/index.lua): an identity is found the same whichever computed it."""

from __future__ import annotations

import pytest
import redis.asyncio

from pipeline.identity.arguments import bucket
from pipeline.identity.commands import KEYSPACE, GraphStore
from tests.identity.support import DEFAULTS, make_event

pytestmark = pytest.mark.integration

KEYS = [f"ecid:{'x' * n}" for n in range(0, 12)] + [
    "email:ünïcode@example.org",
    "phone:+15550100",
    "ecid:日本語",
    "device_id:" + "d" * 63,
]


async def test_the_callers_bucket_is_the_scripts(client: redis.asyncio.Redis) -> None:
    store = GraphStore(client, DEFAULTS)
    for n, key in enumerate(KEYS):
        # Second: the script hashes it; its index entry is where the caller would look.
        await store.stitch([make_event(f"a{n}", 1000, f"crm_id:P{n}", key)])
        assert await client.hexists(f"{KEYSPACE}:i:{bucket(key)}", key), key
        # First: the caller's bucket finds it; the event is the common one, one graph.
        result = await store.stitch([make_event(f"b{n}", 2000, key, f"crm_id:P{n}")])
        assert result.outcomes == ["ok"] and result.changes == [], key
        assert await store.lookup(key) == await store.lookup(f"crm_id:P{n}")
