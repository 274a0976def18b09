"""The identity graph in Redis: a thin caller of the Lua scripts in ``lua/``
(``scripts.py`` assembles them, ``arguments.py`` lays out what they are sent,
``replies.py`` decodes what they answer).

Each operation is one script (one EVALSHA, one round trip) run atomically by Redis; the
rules themselves live in the scripts and, executable, in tests/model/reference.py.
Arguments and results travel as msgpack, which Redis's Lua reads natively (cmsgpack).
Every call declares KEYSPACE, the hash tag all the graph's keys carry, so the same calls
run on one Redis and on a Redis Cluster (the node holding that slot).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack
import redis.asyncio as redis_asyncio
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError, NoScriptError, TimeoutError

from pipeline.identity.arguments import StitchEvent, stitch_batch
from pipeline.identity.config import IdentityConfig
from pipeline.identity.connect import Client, connect
from pipeline.identity.pipe import ScriptPipe
from pipeline.identity.replies import (
    ChangeResult,
    Counts,
    DeleteResult,
    Fragment,
    RawGraph,
    RawProfile,
    StitchResult,
    as_text,
    counts,
    delete_result,
    raw_graph,
    raw_profile,
    stitch_result,
)
from pipeline.identity.scripts import script_source
from pipeline.settings import Settings

# KEYS[1] of every script: each key it touches is "{cdp}:<name>" (lua/includes/keyspace.lua).
KEYSPACE = "{cdp}"
SCRIPTS = (
    "stitch",
    "delete",
    "release",
    "read",
    "versions",
    "lookup",
    "quarantined",
    "tally",
    "overview",
)
# These share one pipelined connection (pipe.py) on one Redis: the lookup API's and the
# publisher's reads, and the stitch call (a worker's batch) unless it must be followed by
# a WAIT on its own connection (CDP_REDIS_MIN_REPLICAS, _replicated).
PIPELINED = frozenset({"read", "versions", "lookup", "stitch"})
# Writes whose effects a worker acknowledges, so CDP_REDIS_MIN_REPLICAS waits for them. The
# dead-letter tally is a statistic: a retry would count twice, a failover may lose a few.
REPLICATED = frozenset({"stitch", "delete", "release"})


class NotReplicatedError(ConnectionError):
    """Fewer replicas than asked received a write in time. A ConnectionError, so callers
    wait it out like an outage (pipeline/retry.py) and run the write again: it is
    idempotent, and its events stay unacknowledged meanwhile."""


class GraphStore:
    """The identity graph of CONTRACT 4, kept in one Redis database or one Redis Cluster."""

    def __init__(
        self,
        redis: Client,
        config: IdentityConfig,
        *,
        dedupe_ttl_s: int = 604800,
        recent_limit: int = 20,
        min_replicas: int = 0,
        replica_timeout_ms: int = 1000,
    ) -> None:
        self.redis = redis
        self.config = config
        self.recent_limit = recent_limit
        self.min_replicas, self.replica_timeout_ms = min_replicas, replica_timeout_ms
        # Each script's ARGV[1], packed once: the whole configuration, but for read.lua
        # (the lookups' and the publisher's reads), which needs only recent_limit.
        whole = msgpack.packb(
            {**config.for_redis(), "dedupe_ttl_s": dedupe_ttl_s, "recent_limit": recent_limit}
        )
        self._configs = dict.fromkeys(SCRIPTS, whole)
        self._configs["read"] = msgpack.packb({"recent_limit": recent_limit})
        self._configs["versions"] = msgpack.packb({})  # unused: not worth sending
        self._scripts = {name: redis.register_script(script_source(name)) for name in SCRIPTS}
        # On a cluster redis-py routes each call to the node of KEYSPACE's slot.
        self._pipe = ScriptPipe(redis) if isinstance(redis, redis_asyncio.Redis) else None
        self._cluster_lock, self._cluster_ready = asyncio.Lock(), False

    @classmethod
    def for_settings(cls, settings: Settings, config: IdentityConfig) -> GraphStore:
        """The store a worker or an operator command uses, as the settings describe it."""
        return cls(
            connect(settings.redis_url),
            config,
            dedupe_ttl_s=settings.dedupe_ttl_s,
            recent_limit=settings.recent_events,
            min_replicas=settings.redis_min_replicas,
            replica_timeout_ms=settings.redis_replica_timeout_ms,
        )

    async def _call(self, name: str, argument: Any, *, text: bool = False) -> Any:
        # Redis 7.0's cmsgpack predates msgpack's bin type: send bytes as raw strings.
        # With text=True every string of the reply is decoded (it holds no binary values).
        args = [self._configs[name], msgpack.packb(argument, use_bin_type=False)]
        script = self._scripts[name]
        try:
            reply = await self._dispatch(name, script, args)
        except AttributeError as exc:
            if self._pipe is not None:  # a bug, not a connection
                raise
            # redis-py 8.1's cluster race (_cluster), should a failover reset the topology.
            raise ConnectionError(f"Redis Cluster connection reset mid-call ({exc})") from exc
        except RuntimeError as exc:
            # uvloop's answer to a write on a transport the peer closed (seen when a
            # cluster node died while redis-py was (re)connecting to it).
            if "handler is closed" not in str(exc):
                raise
            raise ConnectionError(f"Redis connection closed mid-call ({exc})") from exc
        return msgpack.unpackb(reply, raw=not text)

    async def _dispatch(self, name: str, script: AsyncScript, args: list[bytes]) -> Any:
        if self.min_replicas and name in REPLICATED:
            return await self._replicated(script, args)
        if self._pipe is None:
            await self._cluster()
            return await script(keys=[KEYSPACE], args=args)
        if name in PIPELINED:
            keys = [KEYSPACE.encode()]
            try:
                try:
                    return await self._pipe.evalsha(script.sha, keys, args)
                except NoScriptError:  # a restarted Redis, a flushed cache: load, once
                    await self._pipe.load(script_source(name).encode())
                    return await self._pipe.evalsha(script.sha, keys, args)
            except (ConnectionError, TimeoutError, NoScriptError):
                # Below, redis-py reconnects and runs it again, as its own retries would:
                # a stitch that ran finds its events applied and replays their outputs
                # (stitch.lua's duplicate).
                pass
        return await script(keys=[KEYSPACE], args=args)

    async def _cluster(self) -> RedisCluster:
        # redis-py 8.1's RedisCluster races when concurrent calls find it uninitialised
        # (7 of 1,000 such calls failed with an AttributeError from a connection another
        # call had reset; none of 2,000 once initialised first): initialise it first, once.
        assert isinstance(self.redis, RedisCluster)
        if not self._cluster_ready:
            async with self._cluster_lock:
                await self.redis.initialize()
                self._cluster_ready = True
        return self.redis

    async def _replicated(self, script: AsyncScript, args: list[bytes]) -> Any:
        try:
            reply, acked = await self._with_wait(script, args)
        except NoScriptError:  # a promoted replica or a restarted Redis: load, once
            await self.redis.script_load(script.script)  # every master, on a cluster
            reply, acked = await self._with_wait(script, args)
        if acked < self.min_replicas:
            raise NotReplicatedError(
                f"{acked} of CDP_REDIS_MIN_REPLICAS={self.min_replicas} replicas received "
                f"the write within {self.replica_timeout_ms} ms"
            )
        return reply

    async def _with_wait(self, script: AsyncScript, args: list[bytes]) -> list[Any]:
        """The script, then WAIT on the same connection: WAIT counts the replicas that
        received what its connection wrote, so the two travel in one pipeline. On a
        cluster both go to the master of KEYSPACE's slot."""
        evalsha: list[Any] = ["EVALSHA", script.sha, 1, KEYSPACE, *args]
        wait = ("WAIT", self.min_replicas, self.replica_timeout_ms)
        if not isinstance(self.redis, RedisCluster):
            pipe = self.redis.pipeline(transaction=False)
            pipe.execute_command(*evalsha)
            pipe.execute_command(*wait)
            return list(await pipe.execute())
        cluster = await self._cluster()
        node = cluster.get_node_from_key(KEYSPACE)
        assert node is not None  # initialised: every slot has a node
        cpipe = cluster.pipeline()
        cpipe.execute_command(*evalsha)
        cpipe.execute_command(*wait, target_nodes=node)
        replies = await cpipe.execute()
        if cluster.get_node_from_key(KEYSPACE) != node:
            # Redirected (a failover, a moved slot): WAIT ran where the write did not.
            raise NotReplicatedError(f"the graph's slot moved from {node.name} mid-write")
        return list(replies)

    async def stitch(self, events: Sequence[StitchEvent]) -> StitchResult:
        """Apply a batch in order, atomically, in one round trip."""
        return stitch_result(await self._call("stitch", stitch_batch(events), text=True))

    async def lookup(self, identity_key: str) -> str | None:
        (pid,) = await self._call("lookup", [identity_key])
        return pid.decode() if pid else None

    async def read_profile_of(self, identity_key: str) -> RawProfile | None:
        """The profile holding an identity, in one round trip (lookup + read)."""
        (raw,) = await self._call("read", [[identity_key], True, True])
        return raw_profile(raw[5].decode(), raw, self.recent_limit, {}) if raw else None

    async def read_profiles(
        self, profile_ids: Sequence[str], kept: Mapping[str, Fragment] | None = None
    ) -> dict[str, RawProfile | None]:
        """``kept``: fragments the caller holds (a profile's ``fragments`` of an earlier
        read, any worker's), by identity key: Redis sends only what changed since."""
        held = {k: [f.count_text, f.timeline_min()] for k, f in (kept or {}).items()}
        raws = await self._call("read", [list(profile_ids), True, False, held])
        return {
            pid: raw_profile(pid, raw, self.recent_limit, kept or {}) if raw else None
            for pid, raw in zip(profile_ids, raws, strict=True)
        }

    async def versions(self, profile_ids: Sequence[str]) -> list[int | None]:
        """The current version of each profile (None: it does not exist), in order."""
        reply = await self._call("versions", list(profile_ids))
        return [None if v is False else v for v in reply]

    async def graph(self, profile_id: str) -> RawGraph | None:
        (raw,) = await self._call("read", [[profile_id], False, False])
        return raw_graph(profile_id, raw) if raw else None

    async def _delete(self, mode: str, targets: list[str], request_id: str) -> DeleteResult:
        return delete_result(await self._call("delete", [request_id, mode, targets]))

    async def delete_identities(
        self, identity_keys: Sequence[str], request_id: str
    ) -> DeleteResult:
        return await self._delete("identities", list(identity_keys), request_id)

    async def delete_profile_of(self, identity_key: str, request_id: str) -> DeleteResult:
        """Every identity of the graph holding ``identity_key`` (that identity alone when
        it is in no graph), found and deleted in one atomic call."""
        return await self._delete("profile_of", [identity_key], request_id)

    async def quarantined(self) -> list[str]:
        return list(as_text(await self._call("quarantined", None)))

    async def release(self, identity_key: str, request_id: str) -> tuple[bool, ChangeResult]:
        """Lift a quarantine: whether there was one, and its change. No profile changes,
        so nothing is dirty."""
        released, changes = await self._call("release", [identity_key, request_id])
        return bool(released), ChangeResult(set(), set(), as_text(changes))

    async def count_deadletters(self, reasons: Mapping[str, int]) -> None:
        await self._call("tally", dict(reasons))

    async def counts(self) -> Counts:
        return counts(await self._call("overview", None, text=True))
