"""Fault-injection helpers (issue 6): workloads, fast producing, the reference end state
and the comparison of Redis and the compacted topic with it.

The workloads are built so that their end state does not depend on the order in which
the partitions are interleaved (distinct timestamps; a shared device is used at most
four times, so it never reaches the circuit breaker; graphs stay far below the size
limit). Then the reference model, fed in production order, states exactly what the
pipeline must end with, whatever worker processed which partition when.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import msgpack
import pytest
from aiokafka import AIOKafkaProducer

from cdp_tools.produce import ensure_channel_topics
from cdp_tools.quiesce import lag, wait_caught_up
from cdp_tools.stack import StackError, control
from cdp_tools.workerproc import WorkerProcess
from pipeline.identity import config as identity_config
from pipeline.identity.commands import GraphStore
from pipeline.identity.connect import connect
from pipeline.identity.replies import AttributeValue, RawProfile
from pipeline.kafka import client_kwargs
from pipeline.model import Rejected
from pipeline.profile.assemble import merged_attributes
from pipeline.publish.reader import latest_by_key
from pipeline.settings import Settings, Topics
from tests.model.records import stitch_event
from tests.model.reference import Model

FAULTS = [pytest.mark.faults, pytest.mark.integration]
CONFIG = identity_config.load(None)
CHANNELS = ("web", "mobile", "crm", "pos")
# Profile state compared: identity set -> (events.count, attributes, recent event ids).
State = dict[frozenset[str], tuple[int, dict[str, Any], list[str]]]


# -- workloads -----------------------------------------------------------------------------
def fault_size(full: int) -> int:
    """A run's size: the full one, or CDP_FAULT_SCALE of it (`make test` runs the suite at
    0.3 to stay within CI's time; `make test-faults` at full size)."""
    return max(1, round(full * float(os.environ.get("CDP_FAULT_SCALE") or 1)))


def fault_seed() -> int:
    """The run's seed: CDP_FAULT_SEED replays a failed run (each test prints its seed)."""
    return int(os.environ.get("CDP_FAULT_SEED") or random.randrange(1 << 30))


@dataclass
class Run:
    """One fault test's run: its seed (in the line it prints, for CDP_FAULT_SEED), a random
    stream of its own from that seed, and when it started."""

    seed: int = field(default_factory=fault_seed)
    started: float = field(default_factory=time.monotonic)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def report(self, name: str, details: str, summary: dict[str, int], settled_s: float) -> None:
        """The line `pytest -s` shows of the run."""
        print(
            f"\n[faults] {name}: seed={self.seed} {details} {summary} "
            f"settle={settled_s:.1f}s wall={time.monotonic() - self.started:.1f}s"
        )


def people_workload(
    n_events: int, n_people: int, seed: int, *, shared_devices: bool = True
) -> list[tuple[str, dict[str, Any]]]:
    """(channel, envelope) pairs: cookies that browse anonymously and later log in
    (merges), CRM and loyalty rows, app devices, and devices shared by two people."""
    rng = random.Random(seed)
    base = int(time.time() * 1000) - 6 * 3600_000
    uses: Counter[int] = Counter()
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(n_events):
        ts = base + i * 7  # distinct: no tie is left to arrival order
        p = rng.randrange(n_people)
        cookie = {"namespace": "ecid", "id": f"ck-{p}-{rng.randrange(3)}"}
        email = {"namespace": "email", "id": f"Person.{p}@Example.com"}
        crm = {"namespace": "crm_id", "id": f"C-{p}"}
        r = rng.random()
        base_env: dict[str, Any] = {"event_id": f"{seed}-{i}-{uuid.uuid4().hex[:6]}"}
        base_env["timestamp"] = ts
        pair = p // 2
        if shared_devices and r < 0.06 and pair % 20 == 0 and uses[pair] < 4:
            # One tablet in a household of two: it follows whoever used it last.
            uses[pair] += 1
            channel, kind = "mobile", "experience"
            ids = [{"namespace": "device_id", "id": f"shared-tab-{pair}"}, crm]
            extra: dict[str, Any] = {"event": {"type": "app.open"}}
        elif r < 0.35:
            channel, kind, ids = "web", "experience", [cookie]
            extra = {"event": {"type": "web.pageView", "n": i}}
        elif r < 0.55:
            channel, kind, ids = "web", "experience", [cookie, email]
            extra = {"event": {"type": "web.login"}, "attributes": {"lastLogin": ts}}
        elif r < 0.72:
            channel, kind = "crm", "record"
            ids = [dict(crm, primary=True), email]
            extra = {
                "attributes": {
                    "firstName": f"N{p}",
                    "tier": rng.choice(["bronze", "silver", "gold"]),
                    "address": {"city": rng.choice(["Lyon", "Oslo", "Lima"]), "rev": i},
                }
            }
        elif r < 0.87:
            channel, kind = "mobile", "experience"
            ids = [{"namespace": "device_id", "id": f"dev-{p}"}]
            if rng.random() < 0.5:
                ids.append(crm)
            extra = {"event": {"type": "app.open"}, "attributes": {"app": {"build": i % 97}}}
        else:
            channel, kind = "pos", "experience"
            ids = [{"namespace": "loyalty_id", "id": f"l-{p}"}, crm]
            extra = {"event": {"type": "commerce.purchase", "amount": i % 50}}
        out.append((channel, {**base_env, "kind": kind, "identities": ids, **extra}))
    return out


def encode(envelope: dict[str, Any], i: int) -> bytes:
    """Alternate msgpack and JSON: the pipeline takes both."""
    if i % 2:
        import json

        return json.dumps(envelope).encode()
    return msgpack.packb(envelope, use_bin_type=True)


# -- producing -----------------------------------------------------------------------------
@dataclass
class Sent:
    topic: str
    partition: int
    offset: int


async def _produce(
    settings: Settings, items: Sequence[tuple[str, bytes | None, int | None]]
) -> list[Sent]:
    producer = AIOKafkaProducer(
        **client_kwargs(settings),
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
        acks="all",
    )
    await producer.start()
    try:
        futures = []
        for topic, value, partition in items:
            key = str(len(futures)).encode()
            futures.append(await producer.send(topic, value, key=key, partition=partition))
        metas = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [Sent(m.topic, m.partition, m.offset) for m in metas]


def produce(
    settings: Settings, items: Sequence[tuple[str, bytes | None, int | None]]
) -> list[Sent]:
    """Send (topic, value, partition or None) fast; returns where each landed, in order."""
    return asyncio.run(_produce(settings, items))


def ensure_topics(settings: Settings, channels: Iterable[str] = CHANNELS) -> None:
    asyncio.run(ensure_channel_topics(settings, channels))


def produce_envelopes(
    settings: Settings, events: Sequence[tuple[str, dict[str, Any]]], start: int = 0
) -> list[Sent]:
    topics = Topics(settings.topic_prefix)
    return produce(
        settings,
        [(topics.events(c), encode(e, start + i), None) for i, (c, e) in enumerate(events)],
    )


def current_lag(settings: Settings) -> int:
    return asyncio.run(lag(settings))


def settle(settings: Settings, timeout_s: float = 180) -> float:
    return asyncio.run(wait_caught_up(settings, timeout_s, settle=3))


# -- the reference end state ---------------------------------------------------------------
@dataclass
class Expected:
    state: State
    primary_of: dict[str, str] = field(default_factory=dict)  # event_id -> primary key
    rejected: int = 0


def expected_state(events: Sequence[tuple[str, dict[str, Any]]], prefix: str = "cdp.") -> Expected:
    """Feed the reference model the events in production order; its partition, counts,
    merged attributes and recent event ids."""
    model = Model(CONFIG, recent_limit=20)
    now = int(time.time() * 1000)
    expected = Expected({})
    for i, (channel, envelope) in enumerate(events):
        try:
            event = stitch_event(encode(envelope, i), channel, i, prefix, now)
        except Rejected:
            expected.rejected += 1
            continue
        expected.primary_of.setdefault(event.event_id, event.primary)
        # One call per event: a Result's change list grows with its batch.
        model.stitch([event])
    for graph in model.graphs.values():
        frags = [model.fragments[k] for k in graph.members if k in model.fragments]
        values = [
            AttributeValue(path, chan, value, ts, seq, "")
            for f in frags
            for (path, chan), (value, ts, seq) in f.attributes.items()
        ]
        raw_profile = RawProfile("", 0, 0, [], values, [], 0, {}, {})
        recent = sorted(((ts, s) for f in frags for s, ts in f.recent.items()), reverse=True)
        expected.state[frozenset(graph.members)] = (
            sum(f.counts.get("n", 0) for f in frags),
            merged_attributes(raw_profile, "timestamp"),
            [msgpack.unpackb(s)["event_id"] for _, s in recent[:20]],
        )
    return expected


@contextmanager
def model_alongside(
    settings: Settings, events: Sequence[tuple[str, dict[str, Any]]]
) -> Iterator[Future[Expected]]:
    """The reference end state of ``events``, computed in a thread while the test drives
    the workers (the model is the slowest part of the check); the channel topics exist
    once this is entered."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(expected_state, events, settings.topic_prefix)
        ensure_topics(settings)
        yield future


def published_state(settings: Settings) -> State:
    profiles = asyncio.run(latest_by_key(settings, Topics(settings.topic_prefix).profiles))
    state: State = {}
    for doc in profiles.values():
        if doc is None:
            continue
        key = frozenset(f"{i['namespace']}:{i['id']}" for i in doc["identities"])
        assert key not in state, f"two live profiles hold {sorted(key)}"
        state[key] = (
            doc["events"]["count"],
            doc["attributes"],
            [e["event_id"] for e in doc["events"]["recent"]],
        )
    return state


def redis_state(settings: Settings, keys: Iterable[str]) -> State:
    """The graph as Redis holds it: every identity's profile, then those profiles."""

    async def read() -> State:
        client = connect(settings.redis_url)
        store = GraphStore(client, CONFIG)
        try:
            keys_ = sorted(keys)
            pids: list[str | None] = []
            for i in range(0, len(keys_), 50):
                chunk = keys_[i : i + 50]
                pids += await asyncio.gather(*(store.lookup(k) for k in chunk))
            missing = [k for k, p in zip(keys_, pids, strict=True) if p is None]
            assert not missing, f"{len(missing)} identities in no graph, e.g. {missing[:5]}"
            unique = sorted({p for p in pids if p})
            state: State = {}
            for i in range(0, len(unique), 200):
                raws = await store.read_profiles(unique[i : i + 200])
                for pid, raw in raws.items():
                    assert raw is not None, f"{pid} is indexed but has no graph"
                    doc = merged_attributes(raw, "timestamp")
                    recent = [msgpack.unpackb(s)["event_id"] for _, s in raw.recent[:20]]
                    state[frozenset(m.key for m in raw.members)] = (raw.count, doc, recent)
            return state
        finally:
            await client.aclose()

    return asyncio.run(read())


def diff(name: str, got: State, want: State) -> str:
    lines = [f"{name}: {len(got)} profiles, expected {len(want)}"]
    only_got = [k for k in got if k not in want]
    only_want = [k for k in want if k not in got]
    for k in only_got[:3]:
        lines.append(f"  unexpected profile {sorted(k)[:6]} {got[k][0]}")
    for k in only_want[:3]:
        lines.append(f"  missing profile {sorted(k)[:6]} {want[k][0]}")
    bad = [k for k in got if k in want and got[k] != want[k]]
    for k in bad[:3]:
        lines.append(f"  {sorted(k)[:4]}: got {got[k]}\n    expected {want[k]}")
    lines.append(f"  ({len(only_got)} unexpected, {len(only_want)} missing, {len(bad)} differ)")
    return "\n".join(lines)


def check_end_state(settings: Settings, expected: Expected) -> dict[str, int]:
    """Redis and the compacted topic both equal the model; counts are exact."""
    keys = {k for ident in expected.state for k in ident}
    in_redis = redis_state(settings, keys)
    assert in_redis == expected.state, diff("redis", in_redis, expected.state)
    published = published_state(settings)
    assert published == expected.state, diff("cdp.profiles", published, expected.state)
    # Independently of the model: a profile counts the distinct events stored on its
    # identities, and every valid event is counted once.
    events_of: Counter[frozenset[str]] = Counter()
    owner = {k: ident for ident in published for k in ident}
    for primary in expected.primary_of.values():
        events_of[owner[primary]] += 1
    for ident, (count, _, _) in published.items():
        assert count == events_of[ident], (sorted(ident)[:4], count, events_of[ident])
    total = sum(count for count, _, _ in published.values())
    assert total == len(expected.primary_of), (total, len(expected.primary_of))
    return {"profiles": len(published), "events_counted": total}


# -- workers -------------------------------------------------------------------------------
def alive(worker: WorkerProcess) -> bool:
    return worker.proc is not None and worker.proc.poll() is None


def ready(worker: WorkerProcess) -> bool | None:
    """/readyz's answer, or None when the worker does not answer at all."""
    try:
        return worker.get("/readyz")[0] == 200
    except (OSError, ValueError):
        return None


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not {what} after {timeout_s:.0f}s")
        time.sleep(0.25)
    return time.monotonic() - started


def metric(worker: WorkerProcess, name: str) -> dict[str, float]:
    """Samples of one metric from /metrics: label string -> value."""
    import urllib.request

    with urllib.request.urlopen(worker.url + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line.rpartition(" ")
            samples[labels[len(name) :]] = float(value)
    return samples


def log_has_traceback(worker: WorkerProcess) -> bool:
    try:
        return "Traceback" in worker.log_path.read_text(errors="replace")
    except OSError:
        return False


# -- stack faults --------------------------------------------------------------------------
def _say(message: str) -> None:
    print(f"[stack] {message}")


def stop_service(only: Literal["kafka", "redis"]) -> None:
    control.down(only=only, say=_say)


def start_service(only: Literal["kafka", "redis"], attempts: int = 30) -> None:
    """Start it again; retried because a port in the ephemeral range (a developer's stack,
    e.g. 39092) can be held for a moment by a client that connected to itself while the
    service was away."""
    for attempt in range(attempts):
        try:
            control.up(only=only, say=_say)
            return
        except StackError:
            if attempt == attempts - 1:
                raise
            time.sleep(2.0)
