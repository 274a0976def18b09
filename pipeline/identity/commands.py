"""The identity graph in Redis: a thin caller of the Lua scripts in ``lua/``.

Each operation is one script (one EVALSHA, one round trip) run atomically by Redis; the
rules themselves live in the scripts and, executable, in tests/model/reference.py.
Arguments and results travel as msgpack, which Redis's Lua reads natively (cmsgpack).
Every call declares KEYSPACE, the hash tag all the graph's keys carry, so the same calls
run on one Redis and on a Redis Cluster (the node holding that slot).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import msgpack
import redis.asyncio as redis_asyncio
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError, NoScriptError, TimeoutError

from pipeline.identity import event_fields
from pipeline.identity.config import IdentityConfig
from pipeline.identity.connect import Client, connect
from pipeline.identity.pipe import ScriptPipe
from pipeline.resources import lua_text
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


INCLUDE = re.compile(r"^--@include (\w+)$", re.M)
GENERATED = {"event": event_fields.lua_table}  # includes made from Python definitions


def _include_text(name: str) -> str:
    generated = GENERATED.get(name)
    return generated() if generated else lua_text(f"includes/{name}.lua")


@cache
def script_source(name: str) -> str:
    """The script as Redis runs it: the includes it names (``--@include x``, resolved the
    same way in includes) once each, dependencies first, then the script."""
    parts: list[str] = []
    loaded: set[str] = set()

    def add(text: str) -> None:
        for dep in INCLUDE.findall(text):
            if dep not in loaded:
                loaded.add(dep)
                add(_include_text(dep))
        parts.append(text)

    add(lua_text(f"{name}.lua"))
    return "\n".join(parts)


class NotReplicatedError(ConnectionError):
    """Fewer replicas than asked received a write in time. A ConnectionError, so callers
    wait it out like an outage (pipeline/retry.py) and run the write again: it is
    idempotent, and its events stay unacknowledged meanwhile."""


@dataclass
class StitchEvent:
    """One event as the graph sees it; built by the caller from ``pipeline.model.Event``."""

    event_id: str
    timestamp_ms: int
    channel: str
    type: str
    identities: list[str]  # identity keys, primary included
    primary: str
    attributes: dict[str, bytes]  # flattened path -> msgpack-encoded value
    summary: bytes  # timeline entry, opaque to Redis
    topic: str
    partition: int
    offset: int


@dataclass
class StitchResult:
    outcomes: list[str]  # per event: "ok" | "duplicate" | "rejected:<reason>"
    dirty: set[str]  # profiles whose document must be (re)published
    ceased: set[str]  # profiles that no longer exist: tombstone them
    changes: list[dict[str, Any]]  # for cdp.graph-changes, keyed by change["profile_id"]
    graph_sizes: list[int]  # sizes of the graphs the batch touched
    call_seq: int = 0  # order in which Redis applied this call among all stitch calls


@dataclass
class ChangeResult:
    dirty: set[str]
    ceased: set[str]
    changes: list[dict[str, Any]]


@dataclass
class DeleteResult:
    deleted: list[str]  # identity keys that existed
    dirty: set[str]
    ceased: set[str]
    changes: list[dict[str, Any]]
    # When Redis carried it out (epoch ms), the first time for a redelivered request; None
    # in an answer an earlier version stored.
    done_ms: int | None = None
    # Targets suppressed before the request (deleted by an earlier one); empty in an
    # answer an earlier version stored.
    already: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Member:
    key: str
    first_seen_ms: int
    last_seen_ms: int


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    first_seen_ms: int
    last_seen_ms: int
    seq: int
    event_id: str
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class AttributeValue:
    path: str
    channel: str
    value: bytes  # msgpack-encoded
    timestamp_ms: int
    seq: int
    identity: str  # the fragment it comes from


@dataclass
class RawGraph:
    profile_id: str
    members: list[Member]
    links: list[Link]
    version: int = 0
    updated_at_ms: int = 0


@dataclass(frozen=True)
class Fragment:
    """One member's share of a profile as read: what a publisher keeps between reads."""

    count_text: bytes  # its '#n' as stored (b"" for none): read.lua's proof of no change
    attributes: list[AttributeValue]
    count: int
    by_type: dict[str, int]
    by_channel: dict[str, int]
    recent: list[tuple[int, bytes]]  # its whole timeline, newest first

    def timeline_min(self) -> str:
        """ZRANGEBYSCORE's min just above its newest entry (read.lua's kept min)."""
        return f"({self.recent[0][0]}" if self.recent else "-inf"


@dataclass
class RawProfile:
    profile_id: str
    version: int
    updated_at_ms: int
    members: list[Member]
    attributes: list[AttributeValue]
    recent: list[tuple[int, bytes]]  # (event ts, summary), newest first, whole graph
    count: int
    counts_by_type: dict[str, int]
    counts_by_channel: dict[str, int]
    fragments: dict[str, Fragment] = field(default_factory=dict)  # by identity key


@dataclass(frozen=True)
class Counts:
    """The overview's counters (overview.lua): kept by every graph change, read in O(1)."""

    identities: dict[str, int]  # by namespace
    graph_sizes: dict[int, int]  # identities per graph -> graphs
    quarantined: int
    deadletters: dict[str, int]  # by reason
    since_ms: int | None  # when counting began (None: nothing stitched yet)
    partial: bool  # graphs existed before counting began: they are not counted


def _text(value: Any) -> Any:
    """Scripts return strings as bytes (msgpack raw); decode the textual parts."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [_text(v) for v in value]
    if isinstance(value, dict):
        return {_text(k): _text(v) for k, v in value.items()}
    return value


def _pairs(flat: list[Any]) -> Iterator[tuple[Any, Any]]:
    items = iter(flat)
    return zip(items, items, strict=True)


def _members(flat: list[Any]) -> list[Member]:
    items = iter(flat)
    return [Member(k.decode(), f, last) for k, f, last in zip(items, items, items, strict=True)]


def _evidence(text: bytes) -> tuple[str, str, int, int]:
    """A stored link evidence (lua/includes/blob.lua): from the end, as the event id may
    hold anything."""
    event_id, topic, partition, offset = text.rsplit(b"\0", 3)
    return event_id.decode(), topic.decode(), int(partition), int(offset)


def _graph(pid: str, raw: list[Any]) -> RawGraph:
    # read.lua's reply: links and their evidence as stored (lua/includes/blob.lua).
    version, updated, flat_members, flat_links, _, _, evidence = raw
    members = _members(flat_members)
    keys = [m.key for m in members]
    causes = [_evidence(text) for text in evidence]
    links = [
        Link(keys[a - 1], keys[b - 1], f, last, seq, *causes[cause - 1])
        for a, b, f, last, seq, cause in zip(*[flat_links[i::6] for i in range(6)], strict=True)
    ]
    links.sort(key=lambda ln: (ln.a, ln.b))
    return RawGraph(pid, members, links, version, updated)


def _fragment(identity: str, fields: list[bytes], recent: list[tuple[int, bytes]]) -> Fragment:
    # Runs for every fragment read: one pass over its fields.
    attributes: list[AttributeValue] = []
    by_type: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    tallies = {b"#t:": by_type, b"#c:": by_channel}
    count_text = b""
    unpack = msgpack.unpackb
    for name, stored in _pairs(fields):
        if name[:1] != b"#":
            channel, _, path = name.decode().partition("|")
            value, ts, seq = unpack(stored, raw=True)
            attributes.append(AttributeValue(path, channel, value, ts, seq, identity))
        elif name == b"#n":  # counts (includes/base.lua: {cdp}:a:<key>): all, by type, by channel
            count_text = stored
        elif (counts := tallies.get(name[:3])) is not None:
            counts[name[3:].decode()] = int(stored)
    return Fragment(count_text, attributes, int(count_text or 0), by_type, by_channel, recent)


def _timeline(flat: list[bytes]) -> list[tuple[int, bytes]]:
    return [(int(ts), summary) for summary, ts in _pairs(flat)]


def _gained(newer: list[tuple[int, bytes]], held: Fragment, limit: int) -> list[tuple[int, bytes]]:
    """A kept timeline plus the entries read.lua found above it: what the zset holds (an
    entry added again moved up; a trim drops the oldest first, never one of ``newer``)."""
    moved = {summary for _, summary in newer}
    timeline = newer + [entry for entry in held.recent if entry[1] not in moved]
    timeline.sort(reverse=True)
    return timeline[:limit]


def _fragments(
    entries: list[list[Any]], kept: Mapping[str, Fragment], limit: int
) -> dict[str, Fragment]:
    fragments = {}
    for key, *read in entries:
        identity = key.decode()
        if not read:  # unchanged since kept
            fragments[identity] = kept[identity]
            continue
        recent = _timeline(read[1])
        if len(read) == 3:  # only newer entries
            recent = _gained(recent, kept[identity], limit)
        fragments[identity] = _fragment(identity, read[0], recent)
    return fragments


def _profile(
    pid: str, raw: list[Any], recent_limit: int, kept: Mapping[str, Fragment]
) -> RawProfile:
    # Runs for every publication, no graph links (a document shows none; the script sends
    # none with fragments).
    fragments = _fragments(raw[4], kept, recent_limit)
    attributes: list[AttributeValue] = []
    recent: list[tuple[int, bytes]] = []
    by_type: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    count = 0
    for f in fragments.values():
        attributes += f.attributes
        recent += f.recent
        count += f.count
        for total, part in ((by_type, f.by_type), (by_channel, f.by_channel)):
            for name, n in part.items():
                total[name] = total.get(name, 0) + n
    recent.sort(reverse=True)
    return RawProfile(
        pid,
        raw[0],
        raw[1],
        _members(raw[2]),
        attributes,
        recent[:recent_limit],
        count,
        by_type,  # sorted where shown (assemble)
        by_channel,
        fragments,
    )


@lru_cache(maxsize=1 << 16)
def bucket(key: str) -> str:
    """The index bucket of an identity key, in decimal, as lua/includes/index.lua hashes it
    (bucket_key): computed here, the script spares its slowest few microseconds a call
    per common event."""
    data = key.encode() + b"\0\0\0"
    h = 0
    for i in range(0, len(data) - 3, 4):
        a, x, c, d = data[i : i + 4]
        h = (h * 923521 + a * 29791 + x * 961 + c * 31 + d) % 2147483647
    return str(h % 65536)


# msgpack.packb makes a Packer per call; this one is kept. It packs only bytes and ints,
# in C without releasing the GIL, so threads cannot interleave in its buffer.
_PACK_RAW = msgpack.Packer(use_bin_type=False).pack


def stored_head(value: bytes, timestamp_ms: int) -> bytes:
    """An attribute value as a fragment stores it (msgpack [value, ts, seq], includes/
    base.lua) up to its seq, which only Redis knows: the script appends it, and packs
    nothing per attribute."""
    return b"\x93" + _PACK_RAW(value) + _PACK_RAW(timestamp_ms)


def stitch_batch(events: Sequence[StitchEvent]) -> list[Any]:
    """The events as the stitch script reads them (its ARGV[2], before msgpack): one flat
    list, each event laid out by ``event_fields.flatten``."""
    return [
        value
        for e in events
        for value in event_fields.flatten(
            {
                **vars(e),
                "attributes": [
                    x
                    for path, value in e.attributes.items()
                    for x in (path, stored_head(value, e.timestamp_ms))
                ],
                "timestamp_text": str(e.timestamp_ms),
                "bucket": bucket(e.identities[0]) if e.identities else "",
            }
        )
    ]


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
        reply = await self._call("stitch", stitch_batch(events), text=True)
        call_seq, outcomes, dirty, ceased, changes, sizes = reply
        return StitchResult(outcomes, set(dirty), set(ceased), changes, sizes, call_seq)

    async def lookup(self, identity_key: str) -> str | None:
        (pid,) = await self._call("lookup", [identity_key])
        return pid.decode() if pid else None

    async def read_profile_of(self, identity_key: str) -> RawProfile | None:
        """The profile holding an identity, in one round trip (lookup + read)."""
        (raw,) = await self._call("read", [[identity_key], True, True])
        return _profile(raw[5].decode(), raw, self.recent_limit, {}) if raw else None

    async def read_profiles(
        self, profile_ids: Sequence[str], kept: Mapping[str, Fragment] | None = None
    ) -> dict[str, RawProfile | None]:
        """``kept``: fragments the caller holds (a profile's ``fragments`` of an earlier
        read, any worker's), by identity key: Redis sends only what changed since."""
        held = {k: [f.count_text, f.timeline_min()] for k, f in (kept or {}).items()}
        raws = await self._call("read", [list(profile_ids), True, False, held])
        return {
            pid: _profile(pid, raw, self.recent_limit, kept or {}) if raw else None
            for pid, raw in zip(profile_ids, raws, strict=True)
        }

    async def versions(self, profile_ids: Sequence[str]) -> list[int | None]:
        """The current version of each profile (None: it does not exist), in order."""
        reply = await self._call("versions", list(profile_ids))
        return [None if v is False else v for v in reply]

    async def graph(self, profile_id: str) -> RawGraph | None:
        (raw,) = await self._call("read", [[profile_id], False, False])
        return _graph(profile_id, raw) if raw else None

    async def _delete(self, mode: str, targets: list[str], request_id: str) -> DeleteResult:
        reply = await self._call("delete", [request_id, mode, targets])
        # An answer stored by an earlier version lacks the later fields.
        deleted, dirty, ceased, changes, *later = reply
        return DeleteResult(
            _text(deleted),
            set(_text(dirty)),
            set(_text(ceased)),
            _text(changes),
            later[0] if later else None,
            _text(later[1]) if len(later) > 1 else [],
        )

    async def delete_identities(
        self, identity_keys: Sequence[str], request_id: str
    ) -> DeleteResult:
        return await self._delete("identities", list(identity_keys), request_id)

    async def delete_profile_of(self, identity_key: str, request_id: str) -> DeleteResult:
        """Every identity of the graph holding ``identity_key`` (that identity alone when
        it is in no graph), found and deleted in one atomic call."""
        return await self._delete("profile_of", [identity_key], request_id)

    async def quarantined(self) -> list[str]:
        return list(_text(await self._call("quarantined", None)))

    async def release(self, identity_key: str, request_id: str) -> tuple[bool, ChangeResult]:
        """Lift a quarantine: whether there was one, and its change. No profile changes,
        so nothing is dirty."""
        released, changes = await self._call("release", [identity_key, request_id])
        return bool(released), ChangeResult(set(), set(), _text(changes))

    async def count_deadletters(self, reasons: Mapping[str, int]) -> None:
        await self._call("tally", dict(reasons))

    async def counts(self) -> Counts:
        stats, quarantined, deadletters = await self._call("overview", None, text=True)
        fields = dict(_pairs(stats))

        def counted(prefix: str) -> dict[str, int]:
            # A field whose count went back to 0 stays in the hash: left out here.
            return {k[len(prefix) :]: int(n) for k, n in fields.items() if k.startswith(prefix)}

        sizes = {int(size): n for size, n in counted("size:").items() if n}
        return Counts(
            {ns: n for ns, n in sorted(counted("ns:").items()) if n},
            dict(sorted(sizes.items())),
            int(quarantined),
            dict(sorted((reason, int(n)) for reason, n in _pairs(deadletters))),
            int(fields["since"]) if "since" in fields else None,
            fields.get("partial") == "1",
        )
