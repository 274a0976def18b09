"""``cdp bench lookup``: profile lookups per second and latency against one worker's API.

Loads ``profiles`` profiles straight into Redis (through the same batch operation the
worker uses), starts a worker, then runs a closed loop of concurrent HTTP lookups by
identity for a bounded time. WIPES the Redis DB at CDP_REDIS_URL.
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import msgpack
import uvloop

from cdp_tools.bench.cpu import cpu_seconds
from cdp_tools.workerproc import WorkerProcess, free_port
from pipeline.identity import config as identity_config
from pipeline.identity.arguments import StitchEvent
from pipeline.identity.commands import GraphStore
from pipeline.identity.connect import connect
from pipeline.settings import Settings


async def load(settings: Settings, profiles: int, batch: int = 1000) -> float:
    client = connect(settings.redis_url)
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


class _Lookups(asyncio.Protocol):
    """One keep-alive connection running lookups in a closed loop: the next request goes
    out when the previous answer is complete. Plain HTTP/1.1 on a protocol: an aiohttp
    client spent as much CPU per request as the worker, on the same two cores."""

    def __init__(self, host: str, profiles: int, rng: random.Random, deadline: float) -> None:
        self.host, self.profiles, self.rng, self.deadline = host, profiles, rng, deadline
        self.timings: list[float] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buffer = b""
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        if time.monotonic() >= self.deadline:
            self.transport.close()
            return
        i = self.rng.randrange(self.profiles)
        self.started = time.perf_counter()
        self.transport.write(
            f"GET /v1/profiles?namespace=email&id=l{i}%40example.org HTTP/1.1\r\n"
            f"Host: {self.host}\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head, sep, body = self.buffer.partition(b"\r\n\r\n")
        length = _CONTENT_LENGTH.search(head)
        if not sep or length is None or len(body) < int(length[1]):
            return  # the rest of the answer is on its way
        self.timings.append(time.perf_counter() - self.started)
        self.buffer = b""
        if head[9:12] != b"200":
            self.done.set_exception(RuntimeError(f"lookup answered {head[9:12].decode()}"))
            self.transport.close()
            return
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if time.monotonic() < self.deadline:
            self.done.set_exception(RuntimeError(f"the worker closed a connection ({exc!r})"))
        else:
            self.done.set_result(None)


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


async def hammer(
    host: str, port: int, profiles: int, seconds: float, concurrency: int
) -> list[float]:
    loop = asyncio.get_running_loop()
    rng = random.Random(1)
    deadline = time.monotonic() + seconds
    clients = []
    for _ in range(concurrency):
        _, client = await loop.create_connection(
            lambda: _Lookups(host, profiles, rng, deadline), host, port
        )
        clients.append(client)
    await asyncio.gather(*(client.done for client in clients))
    return [t for client in clients for t in client.timings]


def _cpu(info: dict[str, Any]) -> float:
    """Redis's CPU seconds from INFO cpu (summed over the nodes of a cluster)."""
    if "used_cpu_sys" in info:
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    return sum(_cpu(node) for node in info.values() if isinstance(node, dict))


async def redis_cpu(settings: Settings) -> float:
    client = connect(settings.redis_url)
    try:
        return _cpu(await client.info("cpu"))
    finally:
        await client.aclose()


def main(
    settings: Settings,
    profiles: int,
    seconds: float,
    concurrency: int = 16,
    worker_python: str = sys.executable,
) -> None:
    tag = uuid.uuid4().hex[:6]
    s = replace(settings, topic_prefix=f"bench{tag}.", app_id=f"cdp-bench-{tag}")
    print(f"loading {profiles} profiles into Redis...")
    took = asyncio.run(load(s, profiles))
    print(f"loaded in {took:.1f}s ({profiles / took:.0f} events/s)")
    worker = WorkerProcess(
        free_port(),
        Path(s.state_dir) / "logs" / f"bench-{tag}.log",
        {"CDP_TOPIC_PREFIX": s.topic_prefix, "CDP_APP_ID": s.app_id},
        command=(worker_python, "-P", "-m", "pipeline", "worker"),
    )
    worker.start()
    try:
        worker.wait_ready()
        assert worker.proc is not None
        host, port = worker.env.get("CDP_HTTP_HOST", "127.0.0.1"), worker.port
        uvloop.run(hammer(host, port, profiles, 1.0, concurrency))  # warm-up
        # CPU per lookup of the three processes sharing the cores: the worker, Redis and
        # this client (which must not be the limit).
        before = cpu_seconds(worker.proc.pid), asyncio.run(redis_cpu(s)), time.process_time()
        timings = sorted(uvloop.run(hammer(host, port, profiles, seconds, concurrency)))
        after = cpu_seconds(worker.proc.pid), asyncio.run(redis_cpu(s)), time.process_time()
    finally:
        worker.stop()
    q = statistics.quantiles(timings, n=100)
    print(
        f"\nlookups by identity : {len(timings) / seconds:8.0f} requests/s "
        f"({concurrency} concurrent clients, {seconds:.0f}s, 1 worker, client on the same "
        f"2-core machine)"
    )
    print(f"latency             : p50 {q[49] * 1000:.2f} ms, p99 {q[98] * 1000:.2f} ms")
    worker_us, redis_us, client_us = (
        (b - a) / len(timings) * 1e6 for a, b in zip(before, after, strict=True)
    )
    print(
        f"CPU per lookup      : worker {worker_us:.0f} us, Redis {redis_us:.0f} us, "
        f"this client {client_us:.0f} us ({client_us * len(timings) / seconds / 1e6:.0%} "
        "of a core)"
    )
