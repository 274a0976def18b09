"""Issue 6.3: the broker restarts mid-stream; every event still counts exactly once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.faults.support import (
    FAULTS,
    alive,
    check_end_state,
    current_lag,
    ensure_topics,
    expected_state,
    fault_seed,
    fault_size,
    people_workload,
    produce_envelopes,
    ready,
    settle,
    start_service,
    stop_service,
    wait_for,
)

# It stops the broker: on a stack of its own (tests/faults/conftest.py).
pytestmark = [*FAULTS, pytest.mark.own_stack("kafka", "redis")]

EVENTS = fault_size(20_000)


def test_broker_restart_mid_stream(pipeline_env, start_worker):
    s = pipeline_env.settings
    seed = fault_seed()
    started = time.monotonic()
    events = people_workload(EVENTS, fault_size(1_500), seed)
    half = EVENTS // 2
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(expected_state, events, s.topic_prefix)
        ensure_topics(s)
        workers = [start_worker(), start_worker()]
        produce_envelopes(s, events[:half])
        time.sleep(0.5)
        lag_at_stop = current_lag(s)
        down_at = time.monotonic()
        try:
            stop_service("kafka")
            time.sleep(3)
        finally:
            start_service("kafka")
        outage_s = time.monotonic() - down_at
        resumed_s = wait_for(lambda: all(ready(w) for w in workers), 120, "ready again")
        produce_envelopes(s, events[half:], start=half)
        settled_s = settle(s, timeout_s=240)
        expected = future.result()
    summary = check_end_state(s, expected)
    assert all(alive(w) for w in workers), "a worker died with the broker"
    print(
        f"\n[faults] kafka: seed={seed} events={EVENTS} lag at stop={lag_at_stop} "
        f"broker away {outage_s:.1f}s, workers ready {resumed_s:.1f}s later; {summary} "
        f"settle={settled_s:.1f}s wall={time.monotonic() - started:.1f}s"
    )
