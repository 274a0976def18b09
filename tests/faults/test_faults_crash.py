"""Issue 6.1: kill -9 workers mid-stream; every event still counts exactly once."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from pipeline.identity.commands import GraphStore
from tests.faults.support import (
    CONFIG,
    FAULTS,
    Run,
    alive,
    check_end_state,
    current_lag,
    encode,
    ensure_topics,
    fault_size,
    model_alongside,
    people_workload,
    produce_envelopes,
    settle,
)
from tests.integration.support import view
from tests.model.records import stitch_event

# Its workload floods Redis: on a Redis of its own (tests/faults/conftest.py).
pytestmark = [*FAULTS, pytest.mark.own_stack("redis")]

EVENTS = fault_size(50_000)
PEOPLE = fault_size(3_000)
KILLS = 3


def test_kill_workers_mid_stream(pipeline_env, start_worker):
    s = pipeline_env.settings
    run = Run()
    events = people_workload(EVENTS, PEOPLE, run.seed)
    with model_alongside(s, events) as model:
        workers = [start_worker(), start_worker()]
        chunk = EVENTS // (KILLS + 1)
        lags = []
        for n in range(KILLS + 1):
            produce_envelopes(s, events[n * chunk : (n + 1) * chunk], start=n * chunk)
            if n == KILLS:
                break
            # A kill lands mid-stream: the wait shrinks with the chunk at smaller scales.
            # Two workers drain a 3,750-event chunk within a second on a quiet machine and
            # commit it in one step: waits of up to 0.45 s found it committed.
            time.sleep(run.rng.uniform(0.05, 0.4) * min(1.0, chunk / 12_500))
            victim = run.rng.randrange(len(workers))
            lags.append(current_lag(s))
            workers[victim].kill()  # SIGKILL: no commit, no goodbye to the group
            workers[victim] = start_worker()
        settled_s = settle(s, timeout_s=240)
        expected = model.result()
    summary = check_end_state(s, expected)
    assert all(alive(w) for w in workers)
    # Most kills must land mid-batch, with input not yet committed.
    assert sum(1 for lag in lags if lag > 0) >= KILLS - 1, lags
    run.report("kills", f"events={EVENTS} kills={KILLS} lag at kills={lags}", summary, settled_s)


def test_redelivered_merge_still_tombstones(pipeline_env, start_worker):
    """The window a kill can hit: Redis applied a merge, the worker died before sending
    its outputs, the event comes back as a duplicate. The merged-away id must still get
    its tombstone (it did not before pipeline/stages/stitch.py republished every id the
    replayed changes name)."""
    s = pipeline_env.settings
    topics = pipeline_env.topics
    now = int(time.time() * 1000) - 60_000
    cookie = {"namespace": "ecid", "id": "redelivered-cookie"}
    crm = {"namespace": "crm_id", "id": "REDELIVERED"}
    first = {"event_id": "r-1", "timestamp": now, "kind": "experience", "identities": [cookie]}
    second = {"event_id": "r-2", "timestamp": now + 1, "kind": "record", "identities": [crm]}
    merge = {
        "event_id": "r-3",
        "timestamp": now + 2,
        "kind": "experience",
        "identities": [cookie, crm],
    }
    ensure_topics(s, ["web"])
    start_worker()
    produce_envelopes(s, [("web", first), ("web", second)])
    settle(s)
    before = {k for k, v in view(s, topics.profiles).items() if v is not None}
    assert len(before) == 2

    async def apply_without_outputs() -> None:
        event = stitch_event(encode(merge, 0), "web", 0, s.topic_prefix)
        client = aioredis.from_url(s.redis_url)
        try:
            result = await GraphStore(client, CONFIG).stitch([event])
        finally:
            await client.aclose()
        assert len(result.ceased) == 1

    asyncio.run(apply_without_outputs())
    produce_envelopes(s, [("web", merge)])  # the redelivery
    settle(s)
    profiles = view(s, topics.profiles)
    alive_ids = {k for k, v in profiles.items() if v is not None}
    assert len(alive_ids) == 1, f"a merged-away profile is still live: {sorted(alive_ids)}"
    (survivor,) = alive_ids
    assert profiles[survivor]["events"]["count"] == 3
