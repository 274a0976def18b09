"""Issue 6.3: the broker restarts mid-stream; every event still counts exactly once."""

from __future__ import annotations

import time

import pytest

from tests.faults.support import (
    FAULTS,
    Run,
    alive,
    check_end_state,
    current_lag,
    fault_size,
    model_alongside,
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
    run = Run()
    events = people_workload(EVENTS, fault_size(1_500), run.seed)
    half = EVENTS // 2
    with model_alongside(s, events) as model:
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
        expected = model.result()
    summary = check_end_state(s, expected)
    assert all(alive(w) for w in workers), "a worker died with the broker"
    run.report(
        "kafka",
        f"events={EVENTS} lag at stop={lag_at_stop} broker away {outage_s:.1f}s, workers "
        f"ready {resumed_s:.1f}s later;",
        summary,
        settled_s,
    )
