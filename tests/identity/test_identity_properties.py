"""Property tests: random operation sequences give the same state in Redis and the model.

Small universe so that shared devices, unique-namespace conflicts, size overflow
(max_graph_size 4, a partner namespace among the defaults), duplicates and deletes all
happen, under the default configuration (CONTRACT 4.1's connected set) and under the
shipped opt-in shared-device file (devices and cookies follow one person), drawn per
example. The circuit breaker counts no device or cookie, so random events rarely trip
it: a second property draws events built to (few counted identities that unique
namespaces pull between persons, a threshold of 1 or 2 moves) and releases them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.identity.arguments import StitchEvent
from pipeline.identity.commands import GraphStore
from pipeline.identity.config import IdentityConfig, Namespace
from tests.identity.support import (
    DEFAULTS,
    SHARED_DEVICES,
    Target,
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

# The breaker's property. A counted identity of a non-unique namespace (a phone, a
# partner id; a mover) goes with one person at a time: asserted with the other value of
# that person's unique namespace (a swap), the rebuild (rule 4.2) keeps the newer link,
# so the mover changes graphs and the breaker counts it (and persons pulled along).
CRM_IDS, EMAILS = ["crm_id:C0", "crm_id:C1"], ["email:e0@x.com", "email:e1@x.com"]
OTHER = {a: b for pair in (CRM_IDS, EMAILS) for a, b in (pair, pair[::-1])}
MOVERS = ["phone:+15550001", "partner_id:P1"]
ROAMERS = ["device_id:dev1", "ecid:k0"]  # along for the ride, never counted
BREAKER_UNIVERSE = CRM_IDS + EMAILS + MOVERS + ROAMERS
BREAKER_EXAMPLES = 120
BREAKER_POOL = 16


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


def _event(draw: st.DrawFn, n: int, keys: list[str], ts: int) -> StitchEvent:
    ids = _one_per_unique_namespace(keys)
    attrs = draw(st.dictionaries(st.sampled_from(["name", "tier"]), st.integers(0, 3)))
    return make_event(
        f"ev{n}",
        ts * 1000,
        *ids,
        primary=draw(st.sampled_from(ids)),
        channel=draw(st.sampled_from(["web", "crm"])),
        attributes=attrs,
    )


@st.composite
def events(draw: st.DrawFn) -> list[StitchEvent]:
    """A pool of distinct events; operations pick from it, so ids repeat (redelivery)."""
    return [
        _event(
            draw,
            n,
            draw(st.lists(st.sampled_from(UNIVERSE), min_size=1, max_size=3, unique=True)),
            draw(st.integers(0, 12)),
        )
        for n in range(draw(st.integers(3, POOL)))
    ]


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


@st.composite
def breaker_events(draw: st.DrawFn) -> list[StitchEvent]:
    """Mostly swaps, in time order but for a late event now and then (which the newer
    links beat); besides, a mover joined by a person of the other namespace, a mover
    alone (rejected once quarantined), and two persons (a link stronger than any
    mover's). Pools of fewer than 8 events seldom reach the breaker."""
    person = dict.fromkeys(MOVERS, CRM_IDS[0])  # the person each mover was last named with
    clock, out = 0, []
    for n in range(draw(st.integers(8, BREAKER_POOL))):
        mover = draw(st.sampled_from(MOVERS))
        shape = draw(st.sampled_from(["swap"] * 4 + ["join", "alone", "persons"]))
        if shape == "swap":
            person[mover] = OTHER[person[mover]]
            roamer = draw(st.lists(st.sampled_from(ROAMERS), max_size=1))
            keys = [person[mover], mover, *roamer]
        elif shape == "join":
            keys = [draw(st.sampled_from(EMAILS if person[mover] in CRM_IDS else CRM_IDS)), mover]
        elif shape == "alone":
            keys = [mover]
        else:
            keys = [draw(st.sampled_from(CRM_IDS)), draw(st.sampled_from(EMAILS))]
        clock += draw(st.integers(0, 1))
        out.append(_event(draw, n, keys, max(0, clock - draw(st.sampled_from([0] * 4 + [3])))))
    return out


@st.composite
def breaker_operations(draw: st.DrawFn, size: int) -> list[tuple[str, Any]]:
    """The pool's events in order, a few at a time, now and then one again (redelivery);
    between them releases and deletes (persons deleted would end the swaps), of a named
    identity or an index into what the model holds quarantined then. The last: pool
    events again, later (a quarantined identity left out), a release, and pool events
    again (the released identity links, and moves, again)."""
    quarantined = st.integers(0, 3)
    ops: list[tuple[str, Any]] = []
    fresh = 0
    while fresh < size:
        kind = draw(st.sampled_from(["batch"] * 4 + ["release", "delete"]))
        if kind == "batch":
            batch = list(range(fresh, min(size, fresh + draw(st.integers(1, 4)))))
            fresh = batch[-1] + 1
            if draw(st.integers(0, 4)) == 0:
                batch.insert(draw(st.integers(0, len(batch))), draw(st.integers(0, fresh - 1)))
            ops.append(("batch", batch))
        elif kind == "release":
            named = st.sampled_from(MOVERS + CRM_IDS + EMAILS)
            ops.append(("release", draw(st.one_of(quarantined, named))))
        else:
            named = st.sampled_from(MOVERS + ROAMERS)
            ops.append(("delete", ([draw(st.one_of(quarantined, named))], draw(REQUEST))))
    later = st.lists(
        st.tuples(st.integers(0, size - 1), st.integers(size, size + 8)), min_size=1, max_size=4
    )
    return [*ops, ("again", draw(later)), ("release", draw(quarantined)), ("again", draw(later))]


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


def _quarantined(model: Model, target: str | int) -> str:
    """An int names the target-th identity the model holds quarantined (an identity
    named nowhere when none is)."""
    if isinstance(target, str):
        return target
    held = sorted(model.quarantined) or ["crm_id:nobody"]
    return held[target % len(held)]


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
        key = _quarantined(model, arg)
        (was_quarantined, released), expected = (
            await store.release(key, "r"),
            model.release(key, "r"),
        )
        assert was_quarantined == bool(expected.changes)
        assert without_time(released.changes) == expected.changes
        event("identity_released" if was_quarantined else "release of no quarantine")
        return set()
    if kind == "delete":
        targets, request = arg
        keys = [_quarantined(model, k) for k in targets]
        if model.quarantined.intersection(keys):
            event("delete of a quarantined identity")
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
    assert deleted.already == expected.already
    assert (deleted.dirty, deleted.ceased) == (expected.dirty, expected.ceased)
    assert without_time(deleted.changes) == expected.changes
    return deleted.ceased


async def _scenario(
    store: GraphStore,
    model: Model,
    pool: list[StitchEvent],
    ops: list[tuple[str, Any]],
    universe: list[str],
) -> None:
    await store.redis.flushdb()  # every master of a cluster
    ceased: set[str] = set()
    for op in ops:
        ceased |= await _apply(store, model, op, pool)
    await assert_same_state(store, model, universe, ceased)
    if model.quarantined:
        event("quarantined at the end")


def _check(
    target: Target,
    pool: list[StitchEvent],
    ops: list[tuple[str, Any]],
    cfg: IdentityConfig,
    universe: list[str],
) -> None:
    """Apply ``ops`` to an emptied Redis and a new model; compare them all along."""
    target.run(_scenario(target.store(cfg), Model(cfg, 3), pool, ops, universe))


BASE = settings(
    derandomize=True,
    deadline=None,
    # target only names the Redis (or cluster) each example flushes and fills.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@settings(BASE, max_examples=EXAMPLES)
@given(pool=events(), ops=OPS, follow=st.booleans())
def test_redis_matches_reference_model(
    target: Target,
    pool: list[StitchEvent],
    ops: list[tuple[str, Any]],
    follow: bool,
) -> None:
    event("shared-device rule " + ("on" if follow else "off"))
    _check(target, pool, ops, FOLLOWERS if follow else CONFIG, UNIVERSE)


@settings(BASE, max_examples=BREAKER_EXAMPLES)
@given(pool=breaker_events(), data=st.data(), follow=st.booleans(), threshold=st.integers(1, 2))
def test_the_breaker_matches_reference_model(
    target: Target, pool: list[StitchEvent], data: st.DataObject, follow: bool, threshold: int
) -> None:
    """Quarantines (a threshold of 1 or 2 moves in 8 s), what quarantined identities do
    (left out of events, events of them alone rejected), releases, and deletes of them."""
    cfg = dataclasses.replace(
        FOLLOWERS if follow else CONFIG, quarantine_max_reassignments=threshold
    )
    ops = data.draw(breaker_operations(len(pool)), label="ops")
    _check(target, pool, ops, cfg, BREAKER_UNIVERSE)
