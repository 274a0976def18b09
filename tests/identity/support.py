"""Shared helpers: building events and comparing Redis with the reference model."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

import msgpack
import pytest
import redis.asyncio

from pipeline.identity.arguments import StitchEvent
from pipeline.identity.commands import KEYSPACE, GraphStore
from pipeline.identity.config import IdentityConfig, load
from pipeline.identity.connect import Client
from pipeline.identity.replies import DeleteResult, StitchResult
from pipeline.resources import SHARED_DEVICES_CONFIG, schema_path
from tests.model.reference import Model

DEFAULTS = load()
# The shipped opt-in file: devices and cookies follow one person (rule `4.2 shared device`).
SHARED_DEVICES = load(schema_path(SHARED_DEVICES_CONFIG))


T = TypeVar("T")


def redis_url() -> str:
    url = os.environ.get("CDP_REDIS_URL")
    if not url:
        pytest.fail("CDP_REDIS_URL is not set: point it at a scratch Redis (tests FLUSHDB it)")
    return url


def config(base: IdentityConfig = DEFAULTS, **changes: Any) -> IdentityConfig:
    return dataclasses.replace(base, **changes)


def make_event(
    event_id: str,
    ts: int,
    *identities: str,
    primary: str | None = None,
    channel: str = "web",
    type_: str = "page",
    attributes: dict[str, Any] | None = None,
) -> StitchEvent:
    return StitchEvent(
        event_id=event_id,
        timestamp_ms=ts,
        channel=channel,
        type=type_,
        identities=list(identities),
        primary=primary or identities[0],
        attributes={k: msgpack.packb(v) for k, v in (attributes or {}).items()},
        summary=msgpack.packb([event_id, ts, channel, type_]),
        topic=f"cdp.events.{channel}",
        partition=0,
        offset=ts,
    )


def without_time(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in c.items() if k != "at"} for c in changes]


def model_profile(model: Model, pid: str) -> dict[str, Any]:
    """The model's profile in the shape compared with ``GraphStore.read_profiles``."""
    graph = model.graphs[pid]
    frags = {k: model.fragments[k] for k in graph.members if k in model.fragments}
    recent = sorted(((ts, s) for f in frags.values() for s, ts in f.recent.items()), reverse=True)
    counts: dict[str, int] = {}
    for f in frags.values():
        for name, n in f.counts.items():
            counts[name] = counts.get(name, 0) + n
    return {
        "version": graph.version,
        "members": sorted((k, m[0], m[1]) for k, m in graph.members.items()),
        "links": sorted((*ln, *ev) for ln, ev in graph.links.items()),
        "attributes": sorted(
            (k, path, channel, *value)
            for k, f in frags.items()
            for (path, channel), value in f.attributes.items()
        ),
        "recent": recent[: model.recent_limit],
        "counts": counts,
    }


async def store_profile(store: GraphStore, pid: str) -> dict[str, Any] | None:
    profile = (await store.read_profiles([pid]))[pid]
    graph = await store.graph(pid)
    if profile is None or graph is None:
        return None
    counts = {f"t:{k}": n for k, n in profile.counts_by_type.items()}
    counts.update({f"c:{k}": n for k, n in profile.counts_by_channel.items()})
    if profile.count:
        counts["n"] = profile.count
    return {
        "version": profile.version,
        "members": sorted((m.key, m.first_seen_ms, m.last_seen_ms) for m in profile.members),
        "links": sorted(
            (
                ln.a,
                ln.b,
                ln.first_seen_ms,
                ln.last_seen_ms,
                ln.seq,
                ln.event_id,
                ln.topic,
                ln.partition,
                ln.offset,
            )
            for ln in graph.links
        ),
        "attributes": sorted(
            (a.identity, a.path, a.channel, a.value, a.timestamp_ms, a.seq)
            for a in profile.attributes
        ),
        "recent": profile.recent,
        "counts": counts,
    }


async def assert_same_state(
    store: GraphStore, model: Model, keys: list[str], ceased: set[str]
) -> None:
    """Redis holds exactly the model's partition, profile ids, graphs and fragments."""
    for key in keys:
        assert await store.lookup(key) == model.index.get(key), key
        # Stored timelines are trimmed, not just read up to the limit.
        assert await store.redis.zcard(f"{KEYSPACE}:r:{key}") <= model.recent_limit, key
    for pid in sorted(model.graphs):
        assert await store_profile(store, pid) == model_profile(model, pid), pid
    for pid in ceased:
        assert await store_profile(store, pid) is None, pid
    assert await store.quarantined() == sorted(model.quarantined)
    # The breaker's reassignment history, which decides the next quarantine.
    moves = await store.redis.hgetall(f"{KEYSPACE}:mv")
    assert {k.decode(): msgpack.unpackb(v) for k, v in moves.items()} == model.moves
    counts = await store.counts()
    assert counts.identities == dict(sorted(Counter(k.split(":")[0] for k in model.index).items()))
    assert counts.graph_sizes == dict(
        sorted(Counter(len(g.members) for g in model.graphs.values()).items())
    )
    assert counts.quarantined == len(model.quarantined)
    assert not counts.partial


class Both:
    """A GraphStore and the reference model driven in lockstep."""

    def __init__(
        self, client: redis.asyncio.Redis, cfg: IdentityConfig = DEFAULTS, recent: int = 20
    ) -> None:
        self.store = GraphStore(client, cfg, recent_limit=recent)
        self.model, self.keys = Model(cfg, recent), set[str]()
        self.ceased: set[str] = set()

    async def stitch(self, *events: StitchEvent) -> StitchResult:
        got, want = await self.store.stitch(events), self.model.stitch(list(events))
        assert (got.outcomes, got.dirty, got.ceased) == (want.outcomes, want.dirty, want.ceased)
        assert without_time(got.changes) == want.changes
        self.keys |= {k for e in events for k in e.identities}
        self.ceased |= got.ceased
        return got

    async def pid(self, key: str) -> str | None:
        return await self.store.lookup(key)

    async def members(self, key: str) -> list[str]:
        pid = await self.pid(key)
        graph = await self.store.graph(pid) if pid else None
        return sorted(m.key for m in graph.members) if graph else []

    async def check(self) -> None:
        await assert_same_state(self.store, self.model, sorted(self.keys), self.ceased)

    async def delete_identities(self, keys: list[str], request_id: str) -> DeleteResult:
        got = await self.store.delete_identities(keys, request_id)
        want = self.model.delete_identities(keys, request_id)
        assert (got.dirty, got.ceased) == (want.dirty, want.ceased)
        self.ceased |= got.ceased
        return got

    async def delete_profile_of(self, key: str, request_id: str) -> DeleteResult:
        got = await self.store.delete_profile_of(key, request_id)
        want = self.model.delete_profile_of(key, request_id)
        assert (got.dirty, got.ceased) == (want.dirty, want.ceased)
        self.ceased |= got.ceased
        return got


class Target:
    """The Redis (or cluster) of a property test's examples, with one event loop, client
    and store per configuration for all of them (the ``target`` fixture): a cluster
    client's first call (slots, scripts) cost a fifth of an example, and a store holds a
    connection of its own. Each example empties it itself (``store.redis.flushdb()``)."""

    def __init__(self, runner: asyncio.Runner, conn: Client) -> None:
        self.runner, self.conn = runner, conn
        self.stores: dict[tuple[bytes, int], GraphStore] = {}

    def store(self, cfg: IdentityConfig, recent_limit: int = 3) -> GraphStore:
        spec = (msgpack.packb(cfg.for_redis()), recent_limit)
        if spec not in self.stores:
            self.stores[spec] = GraphStore(self.conn, cfg, recent_limit=recent_limit)
        return self.stores[spec]

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)
