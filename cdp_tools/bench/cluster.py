"""The identity benchmark's traffic on a temporary local Redis Cluster: Redis CPU per event
in all and per master, the share of events that needed keys of more than one slot, and
the events/s that N masters could reach by the per-master CPU measured."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from cdp_tools.bench.identity import traffic
from cdp_tools.stack.redis_cluster import RedisCluster, temporary_cluster, url_of
from pipeline.identity import config as identity_config
from pipeline.identity.commands import KEYSPACE, GraphStore
from pipeline.identity.connect import connect

PROJECT_AT = (1, 3, 10)  # masters


def _per_master(cluster: RedisCluster) -> dict[str, tuple[float, int, int]]:
    """Per master: EVALSHA CPU microseconds so far (commandstats), its keys, and how many
    of them are in the slot of KEYSPACE."""
    found = {}
    for node in cluster.nodes:
        client = redis.Redis(host=node.host, port=node.port)
        try:
            stats = client.info("commandstats")
            slot = client.cluster("KEYSLOT", KEYSPACE)
            in_slot = client.cluster("COUNTKEYSINSLOT", slot)
            found[node.address] = (
                float(stats.get("cmdstat_evalsha", {}).get("usec", 0)),
                client.dbsize(),
                in_slot,
            )
        finally:
            client.close()
    return found


async def _stitch(url: str, events: int, batch: int) -> float:
    """Seconds to stitch ``events`` events of the benchmark's traffic, ``batch`` a call."""
    client = connect(url)
    try:
        store = GraphStore(client, identity_config.load())
        source = traffic()
        batches = [[next(source) for _ in range(batch)] for _ in range(events // batch)]
        started = time.perf_counter()
        for chunk in batches:
            await store.stitch(chunk)
        return time.perf_counter() - started
    finally:
        await client.aclose()


@dataclass(frozen=True)
class Figures:
    masters: int
    events: int
    events_per_s: float
    per_master_us_per_event: dict[str, float]  # Redis CPU, by master address
    keys: int
    # Phase 1 of docs/redis-cluster.md keeps every key in KEYSPACE's slot, so no event
    # needs two slots and the busiest master's CPU bounds any number of masters.
    keys_outside_the_slot: int

    @property
    def redis_cpu_us_per_event(self) -> float:
        return sum(self.per_master_us_per_event.values())

    @property
    def projected_events_per_s(self) -> dict[int, float]:
        busiest = max(self.per_master_us_per_event.values())
        return {m: 1e6 / busiest for m in PROJECT_AT}


async def run(events: int = 200_000, batch: int = 500, masters: int = 3) -> Figures:
    with (
        tempfile.TemporaryDirectory(prefix="cdp-bench-cluster-") as state,
        temporary_cluster(Path(state), masters) as cluster,
    ):
        before = _per_master(cluster)
        elapsed = await _stitch(url_of(cluster), events, batch)
        after = _per_master(cluster)
    n = events // batch * batch
    keys = sum(k for _, k, _ in after.values())
    return Figures(
        masters,
        n,
        n / elapsed,
        {a: (after[a][0] - before[a][0]) / n for a in after},
        keys,
        keys - sum(s for _, _, s in after.values()),
    )


def report(f: Figures) -> str:
    total = f.redis_cpu_us_per_event
    shares = ", ".join(
        f"{address} {us:.1f} us ({us / max(total, 1e-9):.0%})"
        for address, us in f.per_master_us_per_event.items()
    )
    return "\n".join(
        [
            f"on a {f.masters}-master Redis Cluster (local, started for this run): "
            f"stitched {f.events} events: {f.events_per_s:,.0f} events/s",
            f"Redis CPU per event, all masters: {total:.1f} us; per master: {shares}",
            f"keys outside the slot of {{cdp}}: {f.keys_outside_the_slot} of {f.keys:,}, "
            "so no event needed a second slot",
            "projected events/s by the busiest master's CPU: "
            + ", ".join(f"{m} masters {v:,.0f}" for m, v in f.projected_events_per_s.items()),
        ]
    )
