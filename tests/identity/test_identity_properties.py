"""Property tests: random operation sequences give the same state in Redis and the model.

Small universe so that shared devices, unique-namespace conflicts, size overflow
(max_graph_size 4, a partner namespace among the defaults), quarantine (a second move
within 8 s), duplicates and deletes all happen, under the default configuration
(CONTRACT 4.1's connected set) and under the shipped opt-in shared-device file (devices
and cookies follow one person), drawn per example.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.identity.commands import GraphStore, StitchEvent
from pipeline.identity.config import IdentityConfig, Namespace
from pipeline.identity.connect import connect
from tests.cluster import flush
from tests.identity.support import (
    DEFAULTS,
    SHARED_DEVICES,
    assert_same_state,
    config,
    make_event,
    without_time,
)
from tests.model.reference import Model

# A real Redis at CDP_REDIS_URL (`make test` starts it).
pytestmark = pytest.mark.integration

UNIVERSE = [
    *(f"crm_id:C{i}" for i in range(3)),
    "loyalty_id:L1",
    *(f"email:e{i}@x.com" for i in range(3)),
    "phone:+15550001",
    "phone:+15550002",
    "device_id:dev1",
    "device_id:dev2",
    *(f"ecid:k{i}" for i in range(4)),
    "partner_id:P1",
    "partner_id:P2",
]
# A partner namespace besides the defaults: rule 4.3's middle tier, and identities the
# breaker counts that are no person (it never counts devices and cookies).
PARTNER = Namespace("partner_id", "partner", 5, False)
SMALL = {"max_graph_size": 4, "quarantine_max_reassignments": 1, "quarantine_window_s": 8}
CONFIG, FOLLOWERS = (
    config(base, namespaces={**base.namespaces, "partner_id": PARTNER}, **SMALL)
    for base in (DEFAULTS, SHARED_DEVICES)
)
EXAMPLES = 300
POOL = 24


def _one_per_unique_namespace(keys: list[str]) -> list[str]:
    """Ingestion dead-letters events with two values of one unique namespace."""
    seen: set[str] = set()
    out = []
    for key in keys:
        ns = key.partition(":")[0]
        if ns not in seen:
            out.append(key)
            seen.update({ns} if CONFIG.namespaces[ns].unique else set())
    return out


@st.composite
def events(draw: st.DrawFn) -> list[StitchEvent]:
    """A pool of distinct events; operations pick from it, so ids repeat (redelivery)."""
    out = []
    for n in range(draw(st.integers(3, POOL))):
        keys = _one_per_unique_namespace(
            draw(st.lists(st.sampled_from(UNIVERSE), min_size=1, max_size=3, unique=True))
        )
        ts = draw(st.integers(0, 12)) * 1000
        attrs = draw(st.dictionaries(st.sampled_from(["name", "tier"]), st.integers(0, 3)))
        out.append(
            make_event(
                f"ev{n}",
                ts,
                *keys,
                primary=draw(st.sampled_from(keys)),
                channel=draw(st.sampled_from(["web", "crm"])),
                attributes=attrs,
            )
        )
    return out


# Few request ids, so that some deletes are redeliveries of an earlier request.
REQUEST = st.sampled_from([f"req-{i}" for i in range(6)])
BATCH = st.tuples(st.just("batch"), st.lists(st.integers(0, POOL - 1), min_size=1, max_size=8))
# Pool events again under new ids and times: identities already linked, so mostly the
# common event (one graph, no new link), with times before and after the stored ones.
AGAIN = st.tuples(
    st.just("again"),
    st.lists(st.tuples(st.integers(0, POOL - 1), st.integers(0, 12)), min_size=1, max_size=8),
)
OPS = st.lists(
    st.one_of(
        BATCH,
        BATCH,
        BATCH,
        AGAIN,
        st.tuples(
            st.just("delete"),
            st.tuples(st.lists(st.sampled_from(UNIVERSE), min_size=1, max_size=2), REQUEST),
        ),
        st.tuples(st.just("delete_profile"), st.tuples(st.sampled_from(UNIVERSE), REQUEST)),
        st.tuples(st.just("release"), st.sampled_from(UNIVERSE)),
    ),
    min_size=1,
    max_size=20,
)


def _again(pool: list[StitchEvent], i: int, ts: int) -> StitchEvent:
    e = pool[i % len(pool)]
    return make_event(
        f"{e.event_id}@{ts}",
        ts * 1000,
        *e.identities,
        primary=e.primary,
        channel=e.channel,
        attributes={k: msgpack.unpackb(v) for k, v in e.attributes.items()},
    )


async def _apply(
    store: GraphStore, model: Model, op: tuple[str, Any], pool: list[StitchEvent]
) -> set[str]:
    kind, arg = op
    if kind in ("batch", "again"):
        batch = (
            [pool[i % len(pool)] for i in arg]
            if kind == "batch"
            else [_again(pool, *a) for a in arg]
        )
        got, want = await store.stitch(batch), model.stitch(batch)
        assert got.outcomes == want.outcomes
        assert (got.dirty, got.ceased) == (want.dirty, want.ceased)
        assert without_time(got.changes) == want.changes
        rules = {f"rule {c['rule']}" for c in got.changes}
        for kind_of_change in {c["type"] for c in got.changes} | set(got.outcomes) | rules:
            event(kind_of_change)  # hypothesis statistics: which paths the examples reach
        return got.ceased
    if kind == "release":
        (was_quarantined, released), expected = (
            await store.release(arg, "r"),
            model.release(arg, "r"),
        )
        assert was_quarantined == bool(expected.changes)
        assert without_time(released.changes) == expected.changes
        return set()
    if kind == "delete":
        keys, request = arg
        deleted, expected = (
            await store.delete_identities(keys, request),
            model.delete_identities(keys, request),
        )
    else:
        key, request = arg
        deleted, expected = (
            await store.delete_profile_of(key, request),
            model.delete_profile_of(key, request),
        )
    assert deleted.deleted == expected.outcomes
    assert (deleted.dirty, deleted.ceased) == (expected.dirty, expected.ceased)
    assert without_time(deleted.changes) == expected.changes
    return deleted.ceased


async def _scenario(
    url: str, pool: list[StitchEvent], ops: list[tuple[str, Any]], cfg: IdentityConfig
) -> None:
    flush(url)
    conn = connect(url)
    try:
        store, model, ceased = GraphStore(conn, cfg, recent_limit=3), Model(cfg, 3), set()
        for op in ops:
            ceased |= await _apply(store, model, op, pool)
        await assert_same_state(store, model, UNIVERSE, ceased)
    finally:
        await conn.aclose()


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    # target_url only names the Redis (or cluster) each example flushes and fills.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(pool=events(), ops=OPS, follow=st.booleans())
def test_redis_matches_reference_model(
    target_url: str, pool: list[StitchEvent], ops: list[tuple[str, Any]], follow: bool
) -> None:
    event("shared-device rule " + ("on" if follow else "off"))
    asyncio.run(_scenario(target_url, pool, ops, FOLLOWERS if follow else CONFIG))
