"""Benchmark of the identity graph: throughput, Redis CPU per event, memory per identity.

WARNING: ``run`` FLUSHDBs the database at ``redis_url``; point it at a scratch Redis.

    python -m cdp_tools.bench.identity redis://127.0.0.1:6379/15
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import sys
import time
from collections.abc import AsyncIterator, Iterator

import msgpack
import redis.asyncio

from pipeline.identity import config as identity_config
from pipeline.identity import event_fields
from pipeline.identity.arguments import StitchEvent, stitch_batch
from pipeline.identity.commands import KEYSPACE, GraphStore

# The baseline: the cheapest useful script over the same payload, one HSET per event.
TRIVIAL_LUA = """
for _, e in ipairs(cmsgpack.unpack(ARGV[1])) do
  redis.call('HSET', 'bench:t:' .. (e[2] % 4096), e[1], e[2])
end
return 0
"""

# The floor: the reads and writes one event needs whatever the rules, and none of the
# rules: index entries, the graph, the new index entries, the fragment (attributes with
# counts, timeline) and the dedupe entry. Its cost bounds what any Lua stitch can reach.
FLOOR_LUA = (
    event_fields.lua_table()
    + """
local batch, o, count = cmsgpack.unpack(ARGV[2]), 0, 0
while o < #batch do
  local pid, key, ids, attrs, after = nil, batch[o + EVENT.primary], event_lists(batch, o)
  for j = ids + 1, ids + batch[ids] do
    local k = batch[j]
    pid = redis.call('HGET', 'bench:i:' .. string.sub(redis.sha1hex(k), 1, 4), k) or pid
  end
  local graph = pid and redis.call('GET', 'bench:g:' .. pid)
  if not pid then
    count = count + 1
    pid = batch[o + EVENT.event_id]
    for j = ids + 1, ids + batch[ids] do
      local k = batch[j]
      redis.call('HSET', 'bench:i:' .. string.sub(redis.sha1hex(k), 1, 4), k, pid)
    end
  end
  local summary = batch[o + EVENT.summary]
  redis.call('SET', 'bench:g:' .. pid, graph or summary)
  redis.call('HSET', 'bench:a:' .. key, batch[o + EVENT.channel] .. '|' .. batch[attrs + 1],
    batch[attrs + 2], '#n', '1')
  redis.call('ZADD', 'bench:r:' .. key, batch[o + EVENT.timestamp_text], summary)
  redis.call('SET', 'bench:e:' .. batch[o + EVENT.event_id], summary, 'EX', '604800')
  o = after
end
return count
"""
)


def _person(p: int) -> list[str]:
    """One customer's identities: CRM id, email, device and cookie."""
    return [
        f"crm_id:CRM{p:08d}",
        f"email:user{p}@example.com",
        f"device_id:dev-{p:08x}",
        f"ecid:{p * 7919:020d}",
    ]


def traffic(seed: int = 1) -> Iterator[StitchEvent]:
    """Endless realistic traffic: 2-3 identities per event, mostly customers not seen
    before (the identity count grows), some returning, 1% linking another customer's
    cookie (a merge)."""
    rng, n, newest = random.Random(seed), 0, 0
    while True:
        if rng.random() < 0.6:
            newest += 1
            person = newest
        else:
            person = rng.randint(1, newest + 1)
        keys = rng.sample(_person(person), rng.choice((2, 2, 3)))
        if rng.random() < 0.01:
            keys.append(_person(rng.randint(1, newest + 1))[3])
        n += 1
        ts = 1_760_000_000_000 + n * 10
        yield StitchEvent(
            event_id=f"{seed:08x}-{n:012d}-4000-8000-bench",
            timestamp_ms=ts,
            channel="web",
            type="commerce.productViews",
            identities=keys,
            primary=keys[0],
            attributes={"lastSku": msgpack.packb(f"SKU-{n % 997}"), "visits": msgpack.packb(n)},
            summary=msgpack.packb({"event_id": n, "ts": ts, "type": "commerce.productViews"}),
            topic="cdp.events.web",
            partition=n % 12,
            offset=n,
        )


def again(events: list[StitchEvent], count: int, seed: int = 2) -> Iterator[StitchEvent]:
    """``count`` events stitched before, again under new ids and later times: their
    identities are known and already linked, so nearly all are the common event (one
    graph, no new link); the rest meet a link that a later rebuild removed."""
    rng, last = random.Random(seed), max(e.timestamp_ms for e in events)
    for n in range(1, count + 1):
        e = rng.choice(events)
        yield dataclasses.replace(
            e, event_id=f"{e.event_id}-again-{n}", timestamp_ms=last + n * 10, offset=e.offset + n
        )


async def _evalsha_usec(client: redis.asyncio.Redis) -> float:
    stats = await client.info("commandstats")
    return float(stats.get("cmdstat_evalsha", {}).get("usec", 0))


async def _script_usec(client: redis.asyncio.Redis, source: str, calls: list[list[bytes]]) -> float:
    """Redis CPU microseconds (commandstats) of running ``source`` once per argument list."""
    script = client.register_script(source)
    usec = await _evalsha_usec(client)
    for args in calls:
        await script(args=args)
    return await _evalsha_usec(client) - usec


async def _memory(client: redis.asyncio.Redis, pattern: str) -> tuple[int, int]:
    """(bytes, keys) of the keys matching ``pattern``."""
    total = keys = 0
    async for chunk in _chunks(client.scan_iter(match=pattern, count=5000), 5000):
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.memory_usage(key, samples=0)
        total += sum(size or 0 for size in await pipe.execute())
        keys += len(chunk)
    return total, keys


async def _chunks(items: AsyncIterator[bytes], size: int) -> AsyncIterator[list[bytes]]:
    chunk: list[bytes] = []
    async for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _delete(client: redis.asyncio.Redis, pattern: str) -> None:
    async for chunk in _chunks(client.scan_iter(match=pattern, count=5000), 5000):
        await client.delete(*chunk)


async def _identities(client: redis.asyncio.Redis) -> int:
    pipe = client.pipeline(transaction=False)
    async for key in client.scan_iter(match=f"{KEYSPACE}:i:*", count=5000):
        pipe.hlen(key)
    return sum(await pipe.execute())


async def run(
    redis_url: str, events: int = 200_000, batch: int = 500, identities: int = 1_000_000
) -> dict[str, float]:
    """Stitch ``events`` events, then load up to ``identities`` identities and measure."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await client.flushdb()
        store = GraphStore(client, identity_config.load())
        source = traffic()
        batches = [[next(source) for _ in range(batch)] for _ in range(events // batch)]
        usec, started = await _evalsha_usec(client), time.perf_counter()
        for chunk in batches:
            await store.stitch(chunk)
        elapsed, stitch_usec = time.perf_counter() - started, await _evalsha_usec(client) - usec
        replayed = list(again([e for chunk in batches for e in chunk], len(batches) * batch // 4))
        common = [replayed[i : i + batch] for i in range(0, len(replayed), batch)]
        usec, started, unchanged = await _evalsha_usec(client), time.perf_counter(), 0
        for chunk in common:
            result = await store.stitch(chunk)
            unchanged += len(chunk) - len({c["event"]["event_id"] for c in result.changes})
        common_elapsed = time.perf_counter() - started
        common_usec = await _evalsha_usec(client) - usec
        trivial_usec = await _script_usec(
            client,
            TRIVIAL_LUA,
            [
                [msgpack.packb([[e.event_id, e.timestamp_ms] for e in chunk], use_bin_type=False)]
                for chunk in batches
            ],
        )
        floor_usec, common_floor_usec = [
            await _script_usec(
                client,
                FLOOR_LUA,
                [
                    [
                        store._configs["stitch"],
                        msgpack.packb(stitch_batch(chunk), use_bin_type=False),
                    ]
                    for chunk in chunks
                ],
            )
            for chunks in (batches, common)  # in this order: the second finds the first's keys
        ]
        await _delete(client, "bench:*")
        while (loaded := await _identities(client)) < identities:
            for _ in range(max(1, (identities - loaded) // (2 * batch))):
                await store.stitch([next(source) for _ in range(batch)])
        index, _ = await _memory(client, f"{KEYSPACE}:i:*")
        graphs, graph_count = await _memory(client, f"{KEYSPACE}:g:*")
        fragments = sum([(await _memory(client, f"{KEYSPACE}:{p}:*"))[0] for p in "ar"])
        dedupe, _ = await _memory(client, f"{KEYSPACE}:d:*")
        n = len(batches) * batch
        return {
            "events": n,
            "events_per_s": n / elapsed,
            "redis_cpu_us_per_event": stitch_usec / n,
            "trivial_cpu_us_per_event": trivial_usec / n,
            "cpu_ratio_to_trivial": stitch_usec / max(trivial_usec, 1.0),
            "floor_cpu_us_per_event": floor_usec / n,
            "common_events": len(replayed),
            "common_unchanged_share": unchanged / len(replayed),
            "common_events_per_s": len(replayed) / common_elapsed,
            "common_cpu_us_per_event": common_usec / len(replayed),
            "common_floor_cpu_us_per_event": common_floor_usec / len(replayed),
            "identities": loaded,
            "graphs": graph_count,
            "index_bytes_per_identity": index / loaded,
            "graph_bytes_per_identity": (index + graphs) / loaded,
            "fragment_bytes_per_identity": fragments / loaded,
            "dedupe_bytes_per_identity": dedupe / loaded,
        }
    finally:
        await client.aclose()


def report(figures: dict[str, float]) -> str:
    f = figures
    return "\n".join(
        [
            f"stitched {f['events']:.0f} events: {f['events_per_s']:,.0f} events/s",
            f"Redis CPU per event: {f['redis_cpu_us_per_event']:.1f} us "
            f"(trivial one-HSET script: {f['trivial_cpu_us_per_event']:.1f} us, "
            f"ratio {f['cpu_ratio_to_trivial']:.1f}x)",
            f"floor, the same reads and writes without the rules: "
            f"{f['floor_cpu_us_per_event']:.1f} us/event "
            f"(at most {1e6 / max(f['floor_cpu_us_per_event'], 0.1):,.0f} events/s)",
            f"common event ({f['common_events']:.0f} stitched events again under new ids, "
            f"{f['common_unchanged_share']:.1%} changing no graph): "
            f"{f['common_events_per_s']:,.0f} events/s, "
            f"Redis CPU {f['common_cpu_us_per_event']:.1f} us/event, "
            f"floor {f['common_floor_cpu_us_per_event']:.1f} us/event",
            f"memory after {f['identities']:,.0f} identities in {f['graphs']:,.0f} graphs:",
            f"  identity index  {f['index_bytes_per_identity']:.0f} B/identity (target <= 64)",
            f"  index + graphs  {f['graph_bytes_per_identity']:.0f} B/identity "
            "incl. links and evidence (target <= 196)",
            f"  fragments       {f['fragment_bytes_per_identity']:.0f} B/identity (attributes, "
            "recent, counts; target <= 194)",
            f"  dedupe entries  {f['dedupe_bytes_per_identity']:.0f} B/identity (expire after TTL)",
        ]
    )


if __name__ == "__main__":
    print(report(asyncio.run(run(sys.argv[1]))))
