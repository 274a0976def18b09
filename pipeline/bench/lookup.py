"""``cdp bench lookup``: profile lookups per second and latency against one worker's API.

Loads ``profiles`` profiles straight into Redis (through the same batch operation the
worker uses), starts a worker, then runs a closed loop of concurrent HTTP lookups by
identity for a bounded time. WIPES the Redis DB at CDP_REDIS_URL.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from dataclasses import replace
from pathlib import Path

import aiohttp
import msgpack
import redis.asyncio as aioredis

from pipeline.identity import config as identity_config
from pipeline.identity.commands import GraphStore, StitchEvent
from pipeline.settings import Settings
from pipeline.workerproc import WorkerProcess, free_port


async def load(settings: Settings, profiles: int, batch: int = 1000) -> float:
    client = aioredis.from_url(settings.redis_url)
    await client.flushdb()
    store = GraphStore(client, identity_config.load(settings.identity_config or None))
    started = time.perf_counter()
    now = int(time.time() * 1000)
    for base in range(0, profiles, batch):
        await store.stitch(
            [
                StitchEvent(
                    event_id=f"load-{i}",
                    timestamp_ms=now,
                    channel="crm",
                    kind="record",
                    type="record",
                    identities=[f"crm_id:L{i}", f"email:l{i}@example.org"],
                    primary=f"crm_id:L{i}",
                    attributes={"firstName": msgpack.packb(f"N{i}"), "tier": msgpack.packb("gold")},
                    summary=msgpack.packb({"event_id": f"load-{i}", "type": "record"}),
                    topic="bench",
                    partition=0,
                    offset=i,
                )
                for i in range(base, min(profiles, base + batch))
            ]
        )
    await client.aclose()
    return time.perf_counter() - started


async def hammer(url: str, profiles: int, seconds: float, concurrency: int) -> list[float]:
    timings: list[float] = []
    deadline = time.monotonic() + seconds
    rng = random.Random(1)

    async def client(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            i = rng.randrange(profiles)
            started = time.perf_counter()
            async with session.get(
                f"{url}/v1/profiles", params={"namespace": "email", "id": f"l{i}@example.org"}
            ) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"lookup answered {r.status}")
            timings.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return timings


def main(settings: Settings, profiles: int, seconds: float, concurrency: int = 16) -> None:
    tag = uuid.uuid4().hex[:6]
    s = replace(settings, topic_prefix=f"bench{tag}.", app_id=f"cdp-bench-{tag}")
    print(f"loading {profiles} profiles into Redis...")
    took = asyncio.run(load(s, profiles))
    print(f"loaded in {took:.1f}s ({profiles / took:.0f} events/s)")
    worker = WorkerProcess(
        free_port(),
        Path(s.state_dir) / "logs" / f"bench-{tag}.log",
        {"CDP_TOPIC_PREFIX": s.topic_prefix, "CDP_APP_ID": s.app_id},
    )
    worker.start()
    try:
        worker.wait_ready()
        asyncio.run(hammer(worker.url, profiles, 1.0, concurrency))  # warm-up
        timings = sorted(asyncio.run(hammer(worker.url, profiles, seconds, concurrency)))
    finally:
        worker.stop()
    q = statistics.quantiles(timings, n=100)
    print(
        f"\nlookups by identity : {len(timings) / seconds:8.0f} requests/s "
        f"({concurrency} concurrent clients, {seconds:.0f}s, 1 worker, client on the same "
        f"2-core machine)"
    )
    print(f"latency             : p50 {q[49] * 1000:.2f} ms, p99 {q[98] * 1000:.2f} ms")
