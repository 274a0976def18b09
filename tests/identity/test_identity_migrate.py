"""`cdp migrate-keys`: a graph kept by a version before the {cdp} tag survives the upgrade,
and a worker refuses to start on it until it is moved."""

from __future__ import annotations

import pytest
import redis.asyncio

from pipeline.identity.commands import KEYSPACE, GraphStore
from pipeline.identity.migrate import holds_old_layout, migrate
from pipeline.worker.run import StartupError, check_redis
from tests.identity.support import DEFAULTS, make_event, redis_url

pytestmark = pytest.mark.integration


@pytest.fixture
def target_url() -> str:
    """One Redis: the old layout never ran on a cluster."""
    return redis_url()


async def test_an_old_layout_is_refused_then_moved_whole(client: redis.asyncio.Redis) -> None:
    store = GraphStore(client, DEFAULTS)
    await store.stitch(
        [
            make_event("m1", 1000, "email:a@example.org", "crm_id:A"),
            make_event("m2", 2000, "ecid:c1", "email:a@example.org"),
        ]
    )
    before = await store.read_profile_of("ecid:c1")
    # The layout of the version before: the same names without the tag.
    tagged = [k async for k in client.scan_iter(match=f"{KEYSPACE}:*")]
    for key in tagged:
        await client.rename(key, b"cdp:" + key[len(KEYSPACE) + 1 :])
    assert await store.read_profile_of("ecid:c1") is None
    assert await holds_old_layout(client)
    with pytest.raises(StartupError, match="cdp migrate-keys"):
        await check_redis(redis_url())

    assert await migrate(client) == len(tagged)
    assert not await holds_old_layout(client)
    await check_redis(redis_url())
    assert await store.read_profile_of("ecid:c1") == before
    # Dedupe entries moved too: a redelivery is still recognised.
    assert (await store.stitch([make_event("m1", 1000, "email:a@example.org")])).outcomes == [
        "duplicate"
    ]
    assert await migrate(client) == 0
