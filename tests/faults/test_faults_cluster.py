"""Issue 11: the identity graph on a 3-master Redis Cluster, through a crash and restart
of the master that holds it (kill -9, mid-stream) and a worker killed with -9; and on a
cluster with a replica per master, through a failover to that replica.

The local cluster's masters run with AOF and `appendfsync always`. Without replicas the
crashed master comes back with every acknowledged write; meanwhile its slots have no
master and the workers wait (pipeline/retry.py) without acknowledging anything. With
replicas, a replica is promoted, and CDP_REDIS_MIN_REPLICAS=1 makes the workers
acknowledge only writes a replica received (Redis WAIT), so the promoted replica holds
every acknowledged one (docs/redis-cluster.md, "A shard fails over").
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from cdp_tools.stack.redis_cluster import ClusterNode, url_of
from cdp_tools.stack.redis_cluster import RedisCluster as LocalCluster
from pipeline.identity.commands import KEYSPACE
from pipeline.settings import Settings
from tests.cluster import local_cluster, sync_client
from tests.conftest import PipelineEnv, new_pipeline_env, worker_starter
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
    settle,
    wait_for,
)

pytestmark = FAULTS

EVENTS = fault_size(18_000)
FAILOVER_EVENTS = fault_size(12_000)
DOWN_S = 3.0  # the master stays dead this long while input keeps arriving


@pytest.fixture
def pipeline_env(base_settings: Settings, tmp_path: Path, cluster_url: str) -> PipelineEnv:
    return new_pipeline_env(replace(base_settings, redis_url=cluster_url), tmp_path)


def _holder(cluster: LocalCluster, url: str) -> int:
    """The index in ``cluster.nodes`` of the master holding the graph's slot."""
    client = sync_client(url)
    try:
        port = client.get_node_from_key(KEYSPACE).port  # type: ignore[union-attr]
    finally:
        client.close()
    return [n.port for n in cluster.nodes].index(port)


def _kill_9(node: ClusterNode) -> None:
    recorded = node.running()
    assert recorded is not None, "the cluster node is not running"
    os.kill(recorded[0], signal.SIGKILL)


def _role(node: ClusterNode) -> dict[str, Any]:
    client = node.client()
    try:
        return dict(client.info("replication"))
    except redis.RedisError:
        return {}
    finally:
        client.close()


def test_master_crash_and_worker_kill_on_a_cluster(
    pipeline_env: PipelineEnv, start_worker, local_redis_cluster: LocalCluster, cluster_url: str
) -> None:
    s = pipeline_env.settings
    run = Run()
    events = people_workload(EVENTS, fault_size(1_500), run.seed)
    third = EVENTS // 3
    node = local_redis_cluster.nodes[_holder(local_redis_cluster, cluster_url)]
    with model_alongside(s, events) as model:
        workers = [start_worker(), start_worker()]

        # 1. kill -9 of the master holding the graph mid-stream; input goes on meanwhile.
        produce_envelopes(s, events[:third])
        time.sleep(0.3)
        _kill_9(node)
        try:
            produce_envelopes(s, events[third : 2 * third], start=third)
            time.sleep(DOWN_S)
            assert all(alive(w) for w in workers), "a worker died without its Redis master"
            lag_while_down = current_lag(s)
        finally:
            node.start(lambda _: None)
        wait_for(local_redis_cluster.ok, 60, "cluster_state:ok again")

        # 2. kill -9 of a worker while the rest arrives.
        produce_envelopes(s, events[2 * third :], start=2 * third)
        time.sleep(0.5)
        lag_at_kill = current_lag(s)
        workers[0].kill()
        workers[0] = start_worker()
        settled_s = settle(s, timeout_s=240)
        expected = model.result()
    summary = check_end_state(s, expected)
    assert all(alive(w) for w in workers)
    assert lag_while_down > 0, "the workers consumed while the graph's master was dead"
    run.report(
        "cluster",
        f"events={EVENTS} master {node.port} killed; lag while down={lag_while_down}, at the "
        f"worker kill={lag_at_kill};",
        summary,
        settled_s,
    )


@pytest.fixture(scope="module")
def replicated_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """3 masters with a replica each (AOF, appendfsync always on every node)."""
    with local_cluster(tmp_path_factory.mktemp("replicated"), replicas=1) as cluster:
        yield cluster


def test_failover_to_a_replica_loses_no_acknowledged_event(
    base_settings: Settings,
    tmp_path: Path,
    replicated_cluster: LocalCluster,
) -> None:
    url = url_of(replicated_cluster)
    env = new_pipeline_env(replace(base_settings, redis_url=url), tmp_path)
    s = env.settings
    run = Run()
    events = people_workload(FAILOVER_EVENTS, fault_size(1_000), run.seed)
    half = FAILOVER_EVENTS // 2
    master = replicated_cluster.nodes[_holder(replicated_cluster, url)]
    (replica,) = [n for n in replicated_cluster.nodes if _role(n).get("master_port") == master.port]
    with model_alongside(s, events) as model, worker_starter(env) as start_worker:
        workers = [start_worker(CDP_REDIS_MIN_REPLICAS="1") for _ in range(2)]

        # kill -9 of the master holding the graph mid-stream; its replica takes over.
        produce_envelopes(s, events[:half])
        time.sleep(0.3)
        _kill_9(master)
        produce_envelopes(s, events[half:], start=half)
        wait_for(lambda: _role(replica).get("role") == "master", 60, "the replica promoted")
        # The promoted replica has no replica of its own: nothing can be acknowledged.
        time.sleep(2.0)
        assert all(alive(w) for w in workers), "a worker died in the failover"
        lag_unreplicated = current_lag(s)
        master.start(lambda _: None)  # it rejoins as the new master's replica
        wait_for(replicated_cluster.ok, 60, "cluster_state:ok with every replica synced")
        settled_s = settle(s, timeout_s=240)
        expected = model.result()
    summary = check_end_state(s, expected)
    assert _role(master).get("role") == "slave", "the old master did not rejoin as a replica"
    assert lag_unreplicated > 0, "events were acknowledged while no replica held them"
    run.report(
        "cluster failover",
        f"events={FAILOVER_EVENTS} master {master.port} killed, replica {replica.port} "
        f"promoted; lag while unreplicated={lag_unreplicated};",
        summary,
        settled_s,
    )
