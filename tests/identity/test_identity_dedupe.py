"""Dedupe entries in time windows (lua/includes/dedupe.lua): an event is applied once
while its window lives, windows close and go as time passes, and the keys a version
before them wrote are still read after an upgrade."""

from __future__ import annotations

import msgpack
import pytest
import redis.asyncio

from pipeline.identity.commands import KEYSPACE, GraphStore
from tests.identity.support import DEFAULTS, make_event

pytestmark = pytest.mark.integration

WINDOWS = f"{KEYSPACE}:d"
TTL_S = 3600  # a window is open for a quarter of it


async def _age(client: redis.asyncio.Redis, ms: int) -> None:
    """Moves every window's times ``ms`` into the past, as if that long had passed."""
    for start, closed in (await client.hgetall(WINDOWS)).items():
        if start == b"legacy":
            continue
        await client.hdel(WINDOWS, start)
        older = str(int(start) - ms)
        await client.hset(WINDOWS, older, int(closed) and int(closed) - ms)
        if await client.exists(f"{WINDOWS}:{start.decode()}"):
            await client.rename(f"{WINDOWS}:{start.decode()}", f"{WINDOWS}:{older}")


async def test_an_event_is_applied_once_until_its_window_goes(client: redis.asyncio.Redis) -> None:
    store = GraphStore(client, DEFAULTS, dedupe_ttl_s=TTL_S)
    event = make_event("w1", 1000, "email:a@example.org", "crm_id:A")
    assert (await store.stitch([event])).outcomes == ["ok"]
    assert not await client.exists(f"{KEYSPACE}:e:w1")  # no key per event
    await _age(client, TTL_S * 1000 // 4)  # the open window is due to close
    assert (await store.stitch([event])).outcomes == ["duplicate"]
    assert await client.hlen(WINDOWS) == 2  # closed, and a new one open
    await _age(client, TTL_S * 1000 - 60_000)  # a minute before its TTL since it closed
    assert (await store.stitch([event])).outcomes == ["duplicate"]
    await _age(client, 60_000)
    assert (await store.stitch([event])).outcomes == ["ok"]  # dropped: applied anew
    assert (await store.stitch([event])).outcomes == ["duplicate"]


async def test_an_event_id_used_again_for_other_content_is_a_duplicate(
    client: redis.asyncio.Redis,
) -> None:
    """CONTRACT 3: an event is known by its event_id alone. A producer that reuses an id
    for another event gets the first one processed; the other changes nothing."""
    store = GraphStore(client, DEFAULTS, dedupe_ttl_s=TTL_S)
    first = make_event("same", 1000, "email:a@example.org", attributes={"tier": "gold"})
    other = make_event("same", 2000, "email:b@example.org", "crm_id:B")
    assert (await store.stitch([first])).outcomes == ["ok"]
    assert (await store.stitch([other])).outcomes == ["duplicate"]
    assert await store.lookup("email:b@example.org") is None
    assert await store.lookup("crm_id:B") is None


async def test_dedupe_keys_of_the_version_before_are_read(client: redis.asyncio.Redis) -> None:
    """A graph stitched by the version before the windows (a key per event, with a TTL):
    its events stay deduplicated after the upgrade, and its keys are read for one TTL."""
    store = GraphStore(client, DEFAULTS, dedupe_ttl_s=TTL_S)
    await client.set(f"{KEYSPACE}:calls", 7)
    await client.set(f"{KEYSPACE}:e:old1", msgpack.packb([]), ex=TTL_S)
    old = make_event("old1", 1000, "email:a@example.org")
    assert (
        await store.stitch([old, make_event("new1", 2000, "email:b@example.org")])
    ).outcomes == [
        "duplicate",
        "ok",
    ]
    until = int(await client.hget(WINDOWS, "legacy") or 0)
    assert until > 0
    await client.hset(WINDOWS, "legacy", until - TTL_S * 1000)  # one TTL later
    assert (await store.stitch([make_event("new2", 3000, "email:c@example.org")])).outcomes == [
        "ok"
    ]
    assert not await client.hexists(WINDOWS, "legacy")
    assert (await store.stitch([old])).outcomes == ["ok"]  # its key is no longer read
