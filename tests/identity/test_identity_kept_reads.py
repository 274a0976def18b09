"""Reads that name kept fragments (the publisher's) give what a full read gives.

The property test publishes with two publishers that keep fragments (two workers, each
publishing some of the profiles a step changed, one's cache emptied now and then) and
compares every document, in both encodings, with a publisher that keeps nothing. The
operations are the identity property tests' (merges, splits, deletes, quarantine,
redelivery, events older and newer than the stored ones), with recent_limit 3 so that
timelines are trimmed.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from pipeline.identity.arguments import StitchEvent
from pipeline.identity.commands import GraphStore
from pipeline.identity.connect import Client
from pipeline.publish.encode import encode
from pipeline.publish.profiles import Publisher, PublishSettings
from tests.identity.support import Target, make_event
from tests.identity.test_identity_properties import CONFIG, OPS, _again, events

pytestmark = pytest.mark.integration

SETTINGS = PublishSettings(recent_limit=3)


async def _apply(store: GraphStore, op: tuple[str, Any], pool: list[StitchEvent]) -> set[str]:
    """The profiles ``op`` changed or ended."""
    kind, arg = op
    if kind == "release":
        await store.release(arg, "r")
        return set()
    if kind == "batch":
        result: Any = await store.stitch([pool[i % len(pool)] for i in arg])
    elif kind == "again":
        result = await store.stitch([_again(pool, *a) for a in arg])
    elif kind == "delete":
        result = await store.delete_identities(*arg)
    else:
        result = await store.delete_profile_of(*arg)
    return set(result.dirty | result.ceased)


async def _same_as_full_read(store: GraphStore, publisher: Publisher, ids: list[str]) -> None:
    got = await publisher.render(ids)
    want = await Publisher(store, CONFIG, SETTINGS).render(ids)
    assert [(p.profile_id, p.value) for p in got] == [(p.profile_id, p.value) for p in want]
    assert [encode(p.document, "json") for p in got] == [encode(p.document, "json") for p in want]


async def _scenario(
    store: GraphStore, pool: list[StitchEvent], ops: list[tuple[str, Any]], data: st.DataObject
) -> None:
    await store.redis.flushdb()  # every master of a cluster
    publishers = [Publisher(store, CONFIG, SETTINGS) for _ in range(2)]
    touched: set[str] = set()
    for op in ops:
        touched |= await _apply(store, op, pool)
        for publisher in publishers:
            if data.draw(st.integers(0, 9)) == 0:
                event("a cache emptied midway")
                publisher.kept.clear()
            if touched:
                ids = data.draw(st.lists(st.sampled_from(sorted(touched)), unique=True))
                await _same_as_full_read(store, publisher, ids)


@settings(
    max_examples=150,
    phases=[Phase.generate, Phase.shrink],
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(pool=events(), ops=OPS, data=st.data())
def test_kept_fragments_publish_what_a_full_read_does(
    target: Target, pool: list[StitchEvent], ops: list[tuple[str, Any]], data: st.DataObject
) -> None:
    target.run(_scenario(target.store(CONFIG), pool, ops, data))


async def test_only_what_changed_comes_back(client: Client) -> None:
    """An unchanged fragment is its key alone; one that gained newer events, its fields
    and those entries; one whose new entry is older than a kept one, read whole."""
    store = GraphStore(client, CONFIG, recent_limit=3)

    async def read(kept: dict[str, Any]) -> list[list[Any]]:
        (raw,) = await store._call("read", [[pid], True, False, kept])
        return [[x.decode() if isinstance(x, bytes) else x for x in f[:1]] + f[1:] for f in raw[4]]

    first = await store.stitch([make_event("e1", 5000, "crm_id:C1", "ecid:k1")])
    (pid,) = first.dirty
    profile = (await store.read_profiles([pid]))[pid]
    assert profile is not None
    held = {k: [f.count_text, f.timeline_min()] for k, f in profile.fragments.items()}
    assert await read(held) == [["crm_id:C1"], ["ecid:k1"]]

    await store.stitch([make_event("e2", 6000, "crm_id:C1"), make_event("e3", 7000, "crm_id:C1")])
    crm, cookie = await read(held)
    assert (crm[0], len(crm), len(crm[2]), cookie) == ("crm_id:C1", 4, 4, ["ecid:k1"])

    await store.stitch([make_event("e4", 1000, "crm_id:C1")])
    crm, _ = await read(held)
    assert (len(crm), len(crm[2])) == (3, 6)  # whole: three entries, newest first
