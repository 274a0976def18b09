"""What spreading graphs over slots costs Redis, before any rule: the common event's reads
and writes done as today (one script a batch, every key in one slot, so on one master)
and as docs/redis-cluster.md section 4 plans them (an index read in the identity's bucket
slot, then one script per graph in the graph's own slot, pipelined per master), on a
temporary local 3-master Redis Cluster. Redis CPU is each master's main thread's, from
``INFO cpu``: it holds the per-call costs (reading and parsing requests, dispatching a
script) that ``commandstats`` leaves out, and which per-graph calls multiply."""

from __future__ import annotations

import hashlib
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.cluster import RedisCluster as ClusterClient

from cdp_tools.stack.redis_cluster import RedisCluster, temporary_cluster

# Both scripts do, per event: the dedupe check, the graph's GET and SET, the primary's
# fragment HSET and timeline ZADD, the dedupe entry; `{cdp}` also reads the index, which
# the per-graph variant reads before its call, in the identity's bucket slot.
_EVENT = """
  if redis.call('HEXISTS', g .. 'e', eid) == 0 then
    redis.call('SET', g .. 'g', redis.call('GET', g .. 'g') or summary)
    redis.call('HSET', g .. 'a:' .. key, 'web|lastSku', summary, '#n', '1')
    redis.call('ZADD', g .. 'r:' .. key, 1, summary)
    redis.call('HSET', g .. 'e', eid, summary)
  end
"""
ONE_SLOT_LUA = f"""
for i = 1, #ARGV, 3 do
  local key, eid, summary = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local pid = redis.call('HGET', KEYS[1] .. 'i:' .. string.sub(redis.sha1hex(key), 1, 4), key)
  local g = KEYS[1] .. pid .. ':'
{_EVENT}end
"""
PER_GRAPH_LUA = f"""
local g = KEYS[1]
for i = 1, #ARGV, 3 do
  local key, eid, summary = ARGV[i], ARGV[i + 1], ARGV[i + 2]
{_EVENT}end
"""
ONE_SLOT = "{cdp}:"
PROJECT_AT = (3, 10)  # masters


def _bucket(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:4]


def _index_key(key: str) -> str:
    return f"cdp:{{i:{_bucket(key)}}}:i"


@dataclass(frozen=True)
class Figures:
    layout: str
    spreads: bool  # over the masters, by graph; else all on the master of one slot
    events: int
    per_master_us: list[float]  # main-thread CPU per event, by master

    @property
    def total_us(self) -> float:
        return sum(self.per_master_us)

    @property
    def busiest_share(self) -> float:
        return max(self.per_master_us) / max(self.total_us, 1e-9)

    def projected(self, masters: int) -> float:
        """Events/s the busiest master allows at ``masters``, the imbalance measured on
        three kept."""
        if not self.spreads:
            return 1e6 / max(self.per_master_us)
        return 1e6 / (self.total_us * self.busiest_share * len(self.per_master_us) / masters)


class _Run:
    def __init__(self, cluster: RedisCluster, graphs: int, seed: int) -> None:
        first = cluster.nodes[0]
        self.client = ClusterClient(host=first.host, port=first.port)
        self.masters = {n.port: redis.Redis(host=n.host, port=n.port) for n in cluster.nodes}
        self.one_slot = self.client.script_load(ONE_SLOT_LUA)
        self.per_graph = self.client.script_load(PER_GRAPH_LUA)
        self.keys = [f"email:user{g}@example.com" for g in range(graphs)]
        self.rng, self.n = random.Random(seed), 0
        self.home = self.masters[self.client.get_node_from_key(ONE_SLOT).port]
        pipe, home = self.client.pipeline(transaction=False), self.home.pipeline()
        for g, key in enumerate(self.keys):
            pipe.hset(_index_key(key), key, f"p_{g:08x}")
            home.hset(f"{ONE_SLOT}i:{_bucket(key)}", key, f"p_{g:08x}")
        pipe.execute()
        home.execute()

    def close(self) -> None:
        self.client.close()
        for master in self.masters.values():
            master.close()

    def events(self, count: int) -> list[tuple[str, str, str]]:
        out = []
        for _ in range(count):
            self.n += 1
            key = self.keys[self.rng.randrange(len(self.keys))]
            out.append((key, f"e{self.n}", f"summary of event {self.n:08d}"))
        return out

    def cpu_us(self) -> list[float]:
        out = []
        for master in self.masters.values():
            cpu = master.info("cpu")
            out.append(1e6 * (cpu["used_cpu_user_main_thread"] + cpu["used_cpu_sys_main_thread"]))
        return out

    def in_one_slot(self, batch: list[tuple[str, str, str]]) -> None:
        self.home.evalsha(self.one_slot, 1, ONE_SLOT, *(x for event in batch for x in event))

    def per_graph_slot(self, batch: list[tuple[str, str, str]]) -> None:
        reads = self.client.pipeline(transaction=False)
        for key, _, _ in batch:
            reads.hget(_index_key(key), key)
        by_graph: dict[bytes, list[str]] = {}
        for pid, event in zip(reads.execute(), batch, strict=True):
            by_graph.setdefault(pid, []).extend(event)
        # redis-py's cluster pipeline refuses EVALSHA: one plain pipeline per master.
        pipes = {port: m.pipeline(transaction=False) for port, m in self.masters.items()}
        for pid, args in by_graph.items():
            prefix = f"cdp:{{{pid.decode()}}}:"
            port = self.client.get_node_from_key(prefix).port
            pipes[port].evalsha(self.per_graph, 1, prefix, *args)
        for pipe in pipes.values():
            pipe.execute()


def run(events: int = 100_000, batch: int = 500, graphs: int = 20_000) -> list[Figures]:
    """Each layout twice, alternating, on one temporary 3-master cluster."""
    with (
        tempfile.TemporaryDirectory(prefix="cdp-bench-slots-") as state,
        temporary_cluster(Path(state), 3) as cluster,
    ):
        for node in cluster.nodes:  # the AOF's fsyncs are not what is compared
            redis.Redis(host=node.host, port=node.port).config_set("appendonly", "no")
        bench = _Run(cluster, graphs, seed=1)
        try:
            layouts: list[tuple[str, bool, Callable[[list[tuple[str, str, str]]], None]]] = [
                ("one slot, a script a batch", False, bench.in_one_slot),
                ("a slot per graph, a script a graph", True, bench.per_graph_slot),
            ]
            figures = []
            for name, spreads, apply in layouts * 2:
                before = bench.cpu_us()
                calls = events // batch
                for _ in range(calls):
                    apply(bench.events(batch))
                spent = [a - b for a, b in zip(bench.cpu_us(), before, strict=True)]
                n = calls * batch
                figures.append(Figures(name, spreads, n, [s / n for s in spent]))
            return figures
        finally:
            bench.close()


def report(figures: list[Figures]) -> str:
    lines = [
        "the common event's reads and writes without the rules, on a local 3-master "
        "Redis Cluster (main-thread CPU per event; each layout twice, alternating):"
    ]
    for f in figures:
        lines.append(
            f"  {f.layout}: {f.total_us:.1f} us in all; per master "
            + " / ".join(f"{us:.1f}" for us in f.per_master_us)
            + f" (busiest {f.busiest_share:.0%}); projected events/s: "
            + ", ".join(f"{m} masters {f.projected(m):,.0f}" for m in PROJECT_AT)
        )
    one = [f.total_us for f in figures if not f.spreads]
    spread = [f.total_us for f in figures if f.spreads]
    lines.append(
        f"a slot per graph costs {sum(spread) / len(spread) / (sum(one) / len(one)):.2f}x "
        "the Redis CPU of one slot in all"
    )
    return "\n".join(lines)
