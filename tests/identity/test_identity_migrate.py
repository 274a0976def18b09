"""Upgrades: a graph kept by a version before the {cdp} tag survives `cdp migrate-keys`,
and a worker refuses to start on it until it is moved; graph blobs of the form before
shared causes are read as they are and rewritten by the next change."""

from __future__ import annotations

import msgpack
import pytest
import redis.asyncio

from pipeline.identity.commands import KEYSPACE, GraphStore
from pipeline.identity.migrate import holds_old_layout, migrate
from pipeline.identity.replies import RawGraph
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


def _with_evidence_per_link(blob: bytes) -> bytes:
    """A graph blob as versions before shared causes stored it (lua/includes/blob.lua):
    {version, updated_at, members, links}, each link with its own evidence."""
    version, updated, members, links, *evidence = msgpack.unpackb(blob, raw=True)
    flat: list[object] = []
    for i in range(0, len(links), 6):
        eid, topic, partition, offset = evidence[links[i + 5] - 1].rsplit(b"\0", 3)
        flat += [*links[i : i + 5], eid, topic, int(partition), int(offset)]
    return msgpack.packb([version, updated, members, flat], use_bin_type=False)


async def test_graphs_stored_with_evidence_per_link_are_read_and_rewritten(
    client: redis.asyncio.Redis,
) -> None:
    first = [
        make_event("o1", 1000, "email:a@example.org", "crm_id:A", "ecid:c1"),
        make_event("o2", 2000, "email:b@example.org", "crm_id:B"),
    ]
    # A common event on the first graph; a link to its cookie that rebuilds both.
    then = [
        make_event("o3", 3000, "email:a@example.org", "crm_id:A"),
        make_event("o4", 4000, "email:b@example.org", "ecid:c2", "ecid:c1"),
    ]

    async def run(downgrade: bool) -> tuple[list[RawGraph | None], list[RawGraph | None]]:
        await client.flushdb()
        store = GraphStore(client, DEFAULTS)
        await store.stitch(first)
        pids = [await store.lookup(k) for k in ("email:a@example.org", "email:b@example.org")]
        keys = [k async for k in client.scan_iter(match=f"{KEYSPACE}:g:*")]
        if downgrade:
            for key in keys:
                await client.set(key, _with_evidence_per_link(await client.get(key)))
        read = [await store.graph(pid) for pid in pids if pid]
        await store.stitch(then)
        for key in keys:
            blob = await client.get(key)
            assert blob is None or len(msgpack.unpackb(blob)) > 4  # an evidence at least
        return read, [await store.graph(pid) for pid in pids if pid]

    def shape(graphs: list[RawGraph | None]) -> list[object]:
        return [(g.members, g.links) if g else None for g in graphs]

    current, downgraded = await run(False), await run(True)
    assert shape(downgraded[0]) == shape(current[0])
    assert shape(downgraded[1]) == shape(current[1])
    # Three links of one event shared its cause; o4's rebuild moved the cookie c1 away.
    assert current[0][0] is not None and {ln.event_id for ln in current[0][0].links} == {"o1"}
    assert len(current[0][0].links) == 3
