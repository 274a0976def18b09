"""Issue 6.2: Redis restarts and a 30 s Redis outage mid-stream; a worker stopped during one.

The workers wait Redis out (pipeline/retry.py) without acknowledging anything:
they stay alive, /readyz says 503 meanwhile, and they resume by themselves. The stack's
Redis runs with AOF (appendonly yes, appendfsync everysec by default); control.down stops
it with SIGTERM, which fsyncs the AOF, so nothing acknowledged is lost. Surviving a
Redis *crash* (SIGKILL, power loss) without losing acknowledged writes needs
`appendfsync always`: with everysec up to a second of stitched batches can vanish after
their offsets were committed.
"""

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

# It stops Redis: on a stack of its own (tests/faults/conftest.py).
pytestmark = [*FAULTS, pytest.mark.own_stack("kafka", "redis")]

EVENTS = fault_size(18_000)
# Long enough for several of the workers' retries (up to 2 s apart) and two lag readings.
OUTAGE_S = max(12.0, 30.0 * fault_size(1000) / 1000)


def test_redis_restart_and_outage(pipeline_env, start_worker):
    s = pipeline_env.settings
    run = Run()
    events = people_workload(EVENTS, fault_size(1_500), run.seed)
    third = EVENTS // 3
    with model_alongside(s, events) as model:
        workers = [start_worker(), start_worker()]

        # 1. A restart mid-stream: half of the input before it, half while Redis is down.
        half = third // 2
        produce_envelopes(s, events[:half])
        time.sleep(0.5)
        try:
            stop_service("redis")
            produce_envelopes(s, events[half:third], start=half)
            lag_at_restart = current_lag(s)
        finally:
            start_service("redis")

        # 2. Redis gone for 30 s while input keeps arriving. Produced once Redis is gone: a
        # worker fast enough would otherwise finish them first and leave no lag to watch.
        outage_started = time.monotonic()
        not_ready_after = None
        lags = []
        try:
            stop_service("redis")
            produce_envelopes(s, events[third : 2 * third], start=third)
            while time.monotonic() - outage_started < OUTAGE_S:
                assert all(alive(w) for w in workers), "a worker died without Redis"
                if not_ready_after is None and all(ready(w) is False for w in workers):
                    not_ready_after = time.monotonic() - outage_started
                if time.monotonic() - outage_started > 8 and len(lags) < 2:
                    lags.append(current_lag(s))
                time.sleep(1.0)
        finally:
            start_service("redis")
        assert not_ready_after is not None, "/readyz stayed 200 without Redis"
        assert lags[0] > 0 and lags[-1] >= lags[0], f"consumed without Redis: lag {lags}"
        assert all(alive(w) for w in workers)
        resumed_s = wait_for(lambda: all(ready(w) for w in workers), 60, "ready again")

        produce_envelopes(s, events[2 * third :], start=2 * third)
        settled_s = settle(s, timeout_s=240)
        expected = model.result()
    summary = check_end_state(s, expected)
    assert all(alive(w) for w in workers), "a worker restarted or died"
    run.report(
        "redis",
        f"events={EVENTS} lag at restart={lag_at_restart} not ready {not_ready_after:.1f}s "
        f"into the outage, lag during outage={lags}, ready {resumed_s:.1f}s after Redis came "
        "back;",
        summary,
        settled_s,
    )


def test_sigterm_ends_a_worker_waiting_redis_out(pipeline_env, start_worker):
    """A worker holding a batch it cannot apply (Redis gone) still stops on SIGTERM,
    within its grace times, leaving that batch unacknowledged (consumed again later)."""
    s = pipeline_env.settings
    worker = start_worker()
    events = people_workload(200, 20, Run().seed)
    try:
        stop_service("redis")
        produce_envelopes(s, events)
        wait_for(
            lambda: "redis unavailable during stitch" in worker.tail(200),
            60,
            "waiting Redis out",
        )
        # SIGKILL after 50 s (returncode None): Kubernetes' grace is 60 s, compose's 45 s.
        assert worker.stop(timeout_s=50) is not None, "SIGTERM did not end the worker"
    finally:
        start_service("redis")
