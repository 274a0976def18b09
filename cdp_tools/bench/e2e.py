"""``cdp bench e2e``: events/s and event-to-profile latency through real workers, next
to raw aiokafka consume-and-forward passthroughs measured in the same run.

Needs Kafka and Redis (``cdp stack up``); starts its own workers on a fresh topic prefix
and writes only keys of its own (every run's event ids and identities are new): run it
against a scratch Redis DB.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cdp_tools.bench.cpu import CpuWindow, age_seconds, stack_pids
from cdp_tools.bench.cpu import describe as cpu_describe
from cdp_tools.bench.passthrough import passthroughs
from cdp_tools.bench.steady import BROKER_TIME, Hops, describe, latencies, produce_steady
from cdp_tools.bench.topics import drop_topics
from cdp_tools.produce import ensure_channel_topics, produce
from cdp_tools.quiesce import wait_caught_up
from cdp_tools.workerproc import WorkerProcess, free_port
from pipeline.publish.reader import read_to_end
from pipeline.settings import Settings, Topics

CHANNELS = ("web", "mobile", "crm", "pos")
WARMUP_S = 3.0  # before each steady rate's measured seconds


def _events(n: int, people: int, start_ms: int, tag: str) -> list[tuple[str, dict[str, Any]]]:
    """``n`` events of ``people`` people, each with a CRM id and one of two cookies."""
    return [
        (
            CHANNELS[i % 4],
            {
                "event_id": f"bench-{tag}-{i}",
                "timestamp": start_ms + i,
                "kind": "experience",
                "identities": [
                    {"namespace": "crm_id", "id": f"B{tag}-{i % people}"},
                    {"namespace": "ecid", "id": f"bc-{tag}-{i % (people * 2)}"},
                ],
                "attributes": {"n": i},
                "event": {"type": "bench"},
            },
        )
        for i in range(n)
    ]


@dataclass(frozen=True)
class Drain:
    events_per_s: float
    elapsed_s: float
    cpu: dict[str, float]
    threads: str  # the workers' main threads: on a core, waiting for one, asleep


async def _last_publication_s(settings: Settings) -> float:
    last = 0
    async for record in read_to_end(settings, Topics(settings.topic_prefix).profiles):
        last = max(last, record.timestamp_ms)
    return last / 1000


def drain(settings: Settings, workers: list[WorkerProcess], n: int, tag: str) -> Drain:
    """A burst of ``n`` events produced at once to running workers: events/s from the
    first produce to the last profile record, and each process's CPU meanwhile."""
    events = _events(n, max(1, n // 10), int(time.time() * 1000) - 3600_000, tag)
    cpu = _cpu_window(settings, workers)
    started = time.time()
    asyncio.run(produce(settings, events))
    asyncio.run(wait_caught_up(settings, timeout_s=600, settle=1))
    spent, names = cpu.spent(), [name for name in cpu.pids if name.startswith("worker")]
    elapsed = asyncio.run(_last_publication_s(settings)) - started
    # Over the drain alone: what the main threads did in the settling second is noise.
    return Drain(n / elapsed, elapsed, spent, cpu.main_threads(names, elapsed))


def _cpu_window(settings: Settings, workers: list[WorkerProcess]) -> CpuWindow:
    pids = {f"worker{i + 1}": w.proc.pid for i, w in enumerate(workers) if w.proc}
    return CpuWindow({**pids, **stack_pids(settings)})


def _start_worker(settings: Settings, env: dict[str, str], name: str, python: str) -> WorkerProcess:
    log = Path(settings.state_dir) / "logs" / f"{name}.log"
    worker = WorkerProcess(
        free_port(), log, env, command=(python, "-P", "-m", "pipeline", "worker")
    )
    worker.start()
    worker.wait_ready()
    return worker


def _stitch_batches(worker: WorkerProcess) -> tuple[float, float]:
    """Stitch batches (one Redis call each) and the events in them so far, from the
    worker's /metrics."""
    with urllib.request.urlopen(worker.url + "/metrics", timeout=5) as answer:
        lines = answer.read().decode().splitlines()
    values = dict(line.rsplit(" ", 1) for line in lines if line.startswith("cdp_stitch_batch"))
    return float(values["cdp_stitch_batch_events_count"]), float(
        values["cdp_stitch_batch_events_sum"]
    )


def _batches_since(worker: WorkerProcess, before: tuple[float, float]) -> str:
    """``120 stitch batches of 4.2 events`` since ``before`` (``_stitch_batches``)."""
    calls, events = _stitch_batches(worker)
    calls, events = calls - before[0], events - before[1]
    return f"{calls:.0f} stitch batches of {events / max(1, calls):.1f} events"


def _broker_age(cpu: CpuWindow) -> str:
    """``, the broker up 25 s``, where the local stack's broker is known: one started
    shortly before costs more CPU per request (docs/benchmarks.md)."""
    age = age_seconds(cpu.pids["kafka"]) if "kafka" in cpu.pids else None
    return "" if age is None else f", the broker up {age:.0f} s"


def thread_split(process_s: float, main_s: float, events: int) -> str:
    """``worker1 us/event: main thread 2100, other threads 1500``."""
    return (
        f"worker1 us/event: main thread {1e6 * main_s / events:.0f}, "
        f"other threads {1e6 * (process_s - main_s) / events:.0f}"
    )


def _quantiles(hops: list[Hops]) -> str:
    if len(hops) < 2:
        return "too few samples"
    seconds = [h.total for h in hops]
    q = statistics.quantiles(seconds, n=100)
    return (
        f"p50 {q[49] * 1000:6.1f} ms, p99 {q[98] * 1000:6.1f} ms, max {max(seconds) * 1000:.0f} ms"
    )


def main(
    settings: Settings,
    n: int,
    rates: tuple[float, ...],
    seconds: float,
    steady_only: bool = False,
    python: str = sys.executable,
) -> None:
    """``steady_only`` skips the passthroughs and the drains (the steady rates need none);
    ``python`` runs the workers from another checkout's environment, for paired runs."""
    tag = uuid.uuid4().hex[:6]
    s = replace(settings, topic_prefix=f"bench{tag}.", app_id=f"cdp-bench-{tag}")
    env = {"CDP_TOPIC_PREFIX": s.topic_prefix, "CDP_APP_ID": s.app_id}
    if not steady_only:
        print(f"passthroughs: raw aiokafka consume-and-forward of {n} records...")
        plain, committing = asyncio.run(
            passthroughs(s, [e for _, e in _events(n, max(1, n // 10), 0, f"pt{tag}")])
        )
    asyncio.run(ensure_channel_topics(s, CHANNELS, BROKER_TIME))
    workers = [_start_worker(s, env, f"bench-{tag}-1", python)]
    drains: list[tuple[str, Drain]] = []
    try:
        if not steady_only:
            print(f"one worker: warm-up, then a burst of {n} events ({n // 10} people)...")
            drain(s, workers, min(n, 2000), f"w{tag}")
            drains.append(("one worker", drain(s, workers, n, f"a{tag}")))
        latency = {}
        for rate in rates:
            print(f"one worker: {rate:.0f} new visitors/s for {seconds:.0f} s after a warm-up...")
            cpu, batches = _cpu_window(s, workers), _stitch_batches(workers[0])
            sent = asyncio.run(produce_steady(s, rate, seconds, WARMUP_S, f"{rate:.0f}{tag}"))
            # While producing only: reading the profiles back afterwards is the
            # benchmark's own load (it cost the broker more than the pipeline did).
            spent, machine = cpu.spent(), cpu.machine() + _broker_age(cpu)
            threads = cpu.main_threads(["worker1"], time.monotonic() - cpu.opened)
            # Over the warm-up and the steady seconds, as the CPU line.
            events = int(rate * (seconds + WARMUP_S))
            split = thread_split(spent["worker1"], cpu.main_thread_spent("worker1"), events)
            per_call = f"{_batches_since(workers[0], batches)}; main thread: {threads}; {split}"
            latency[rate] = asyncio.run(latencies(s, sent)), len(sent), spent, machine, per_call
        if not steady_only:
            print(f"two workers: a burst of {n} events...")
            workers.append(_start_worker(s, env, f"bench-{tag}-2", python))
            time.sleep(3)  # the group settles after the second member joins
            drains.append(("two workers", drain(s, workers, n, f"b{tag}")))
    finally:
        for worker in workers:
            worker.stop()
        # Faust's own topics are named after the app id (its leader topic).
        asyncio.run(drop_topics(s, (s.topic_prefix, s.app_id)))
    if drains:
        print(f"\npassthrough, no commit        : {plain:8.0f} events/s")
        print(f"passthrough, commit per fetch : {committing:8.0f} events/s")
    for name, d in drains:
        print(
            f"pipeline, {name:<11}         : {d.events_per_s:8.0f} events/s  "
            f"(ratio {d.events_per_s / plain:.3f} of no-commit, "
            f"{d.events_per_s / committing:.3f} of committing)"
        )
        print(f"  CPU over {d.elapsed_s:.1f} s: {cpu_describe(d.cpu, d.elapsed_s, n)}")
        print(f"  main threads: {d.threads}")
    for rate, (hops, visitors, spent, machine, per_call) in latency.items():
        print(
            f"event-to-profile at {rate:5.0f}/s   : {_quantiles(hops)} "
            f"({len(hops)} of {visitors} new visitors, one worker)"
        )
        print(f"  {describe(hops)}")
        # Over the warm-up and the steady seconds.
        events = int(rate * (seconds + WARMUP_S))
        print(f"  CPU: {cpu_describe(spent, seconds + WARMUP_S, events)}; {machine}; {per_call}")
