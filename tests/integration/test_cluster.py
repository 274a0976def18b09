"""The identity graph on a Redis Cluster (CDP_REDIS_URL=redis+cluster://...): named
pipeline tests again, with workers on a local 3-master cluster, and the demo's sample
giving the same profiles there as on one Redis."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cdp_tools.bench import cluster as bench_cluster
from cdp_tools.bench import slots as bench_slots
from cdp_tools.sample import SampleGenerator
from cdp_tools.workerproc import WorkerProcess, free_port
from pipeline.settings import Settings
from tests.conftest import PipelineEnv, new_pipeline_env
from tests.integration.support import identity_set, live, send, settle, view

# Imported, these run here too, with this module's pipeline_env: on the cluster. The
# rules run on the cluster in tests/identity (the property suite and every example), a
# worker's crash and a master's in tests/faults/test_faults_cluster.py.
from tests.integration.test_pipeline import test_merge_tombstones_the_younger_id  # noqa: F401
from tests.integration.test_privacy_delete import (  # noqa: F401
    test_delete_identity_by_topic_removes_it_and_replays_leave_it_deleted,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def pipeline_env(base_settings: Settings, tmp_path: Path, cluster_url: str) -> PipelineEnv:
    return new_pipeline_env(replace(base_settings, redis_url=cluster_url), tmp_path)


def _profiles_of_sample(env: PipelineEnv) -> list[tuple[Any, ...]]:
    """The demo's sample through one worker: each live profile without its id and the
    times of its processing (what the input determines)."""
    sample = SampleGenerator(40, seed=7, start_ms=1_700_000_000_000)
    worker = WorkerProcess(free_port(), env.logs / "worker.log", env.env).start()
    try:
        worker.wait_ready()
        send(env.settings, list(sample.events()))
        settle(env.settings)
    finally:
        worker.stop()
    return sorted(
        (
            sorted(identity_set(d)),
            [(i["first_seen"], i["last_seen"]) for i in sorted(d["identities"], key=str)],
            repr(sorted(d["attributes"].items())),
            d["events"]["count"],
            [e["event_id"] for e in d["events"]["recent"]],
        )
        for d in live(view(env.settings, env.topics.profiles)).values()
    )


def test_the_demo_sample_gives_the_same_profiles_on_a_cluster(
    base_settings: Settings, tmp_path: Path, cluster_url: str
) -> None:
    on_one = _profiles_of_sample(new_pipeline_env(base_settings, tmp_path / "one"))
    cluster_settings = replace(base_settings, redis_url=cluster_url)
    on_cluster = _profiles_of_sample(new_pipeline_env(cluster_settings, tmp_path / "cluster"))
    assert len(on_one) > 30
    assert on_cluster == on_one


def test_the_cluster_benchmark_reads_every_master() -> None:
    """`cdp bench identity`'s cluster part: phase 1 keeps every key in one slot, so one
    master does the work and the others none."""
    figures = asyncio.run(bench_cluster.run(events=1000, batch=100))
    assert figures.events == 1000 and figures.keys > 1000
    assert figures.keys_outside_the_slot == 0
    per_master = figures.per_master_us_per_event
    assert len(per_master) == 3 and sorted(v > 0 for v in per_master.values()) == [0, 0, 1]


def test_the_slots_benchmark_spreads_graphs_and_not_one_slot() -> None:
    """`cdp bench slots`: the layout of one slot loads one master, a slot per graph all
    three; each is measured twice and both did their writes."""
    figures = bench_slots.run(events=3000, batch=100, graphs=300)
    assert [f.spreads for f in figures] == [False, True, False, True]
    for f in figures:
        assert f.events == 3000 and len(f.per_master_us) == 3
        if f.spreads:  # 300 graphs' slots fall on each master
            assert min(f.per_master_us) > 0.15 * f.total_us
        else:  # the other two masters only ran their timers
            assert f.busiest_share > 0.8
    assert "a slot per graph costs" in bench_slots.report(figures)
