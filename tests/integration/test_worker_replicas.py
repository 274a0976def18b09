"""CDP_REDIS_MIN_REPLICAS above the replicas Redis has (the test Redis has none): the
worker starts, since a replica may be restarting, but is not ready, /readyz says which
check fails and why, and its start-up log states the minimum and the replicas there are."""

from __future__ import annotations

import time
from typing import Any

import pytest

from cdp_tools.workerproc import WorkerProcess, free_port

pytestmark = pytest.mark.integration


def readiness(worker: WorkerProcess, timeout_s: float = 90.0) -> dict[str, Any]:
    """/readyz's first answer once Kafka, Redis and the partitions are up."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        assert worker.proc is not None and worker.proc.poll() is None, worker.tail()
        try:
            status, body = worker.get("/readyz")
            if body["partitions_assigned"] and "redis_replicas" in body.get("why", {}):
                assert status == 503
                return dict(body)
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"no such answer in {timeout_s:.0f}s:\n{worker.tail()}")


def test_too_few_replicas_leave_a_worker_running_but_not_ready(pipeline_env: Any) -> None:
    env = {**pipeline_env.env, "CDP_REDIS_MIN_REPLICAS": "1", "CDP_REDIS_REPLICA_TIMEOUT_MS": "50"}
    worker = WorkerProcess(free_port(), pipeline_env.logs / "worker.log", env).start()
    try:
        body = readiness(worker)
        assert body["ready"] is False and body["redis_replicas"] is False
        assert body["kafka"] is body["redis"] is True
        assert body["why"]["redis_replicas"].startswith(
            "CDP_REDIS_MIN_REPLICAS=1, and the Redis master holding the graph has 0 replicas now"
        )
        log = pipeline_env.logs.joinpath("worker.log").read_text()
        assert "CDP_REDIS_MIN_REPLICAS=1, and the Redis master holding the graph has 0" in log
    finally:
        worker.stop()
