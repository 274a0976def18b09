"""Issue 6.4: every event three times, in different channels and partitions: one effect."""

from __future__ import annotations

import pytest

from pipeline.settings import Topics
from tests.faults.support import (
    CHANNELS,
    FAULTS,
    Run,
    check_end_state,
    encode,
    ensure_topics,
    expected_state,
    fault_size,
    metric,
    people_workload,
    produce,
    settle,
)

# Its workload floods Redis: on a Redis of its own (tests/faults/conftest.py).
pytestmark = [*FAULTS, pytest.mark.own_stack("redis")]

EVENTS = fault_size(10_000)
COPIES = 3


def test_triplicates_count_once(pipeline_env, start_worker):
    s = pipeline_env.settings
    topics = Topics(s.topic_prefix)
    run = Run()
    # No shared devices: without unique-namespace conflicts the end state does not depend
    # on which copy of an event arrives first.
    events = people_workload(EVENTS, fault_size(1_000), run.seed, shared_devices=False)
    expected = expected_state(events, s.topic_prefix)
    copies = []
    for i, (channel, envelope) in enumerate(events):
        c, p = CHANNELS.index(channel), run.rng.randrange(4)
        for k in range(COPIES):
            # Each copy in another channel topic and partition; JSON and msgpack mixed.
            copies.append(
                (topics.events(CHANNELS[(c + k) % 4]), encode(envelope, i + k), (p + k) % 4)
            )
    run.rng.shuffle(copies)
    ensure_topics(s)
    workers = [start_worker(), start_worker()]
    produce(s, copies)
    settled_s = settle(s, timeout_s=240)
    summary = check_end_state(s, expected)
    outcomes = {"ok": 0.0, "duplicate": 0.0}
    for worker in workers:
        for labels, value in metric(worker, "cdp_events_consumed_total").items():
            for outcome in outcomes:
                if f'outcome="{outcome}"' in labels:
                    outcomes[outcome] += value
    assert outcomes == {"ok": EVENTS, "duplicate": EVENTS * (COPIES - 1)}, outcomes
    details = f"events={EVENTS} copies={len(copies)} outcomes={outcomes}"
    run.report("duplicates", details, summary, settled_s)
