"""Fixtures shared by the integration tests: real Kafka and Redis (`cdp stack up`,
done by `make test`), an isolated topic prefix and consumer group per test, and
workers as child processes."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis
from hypothesis import is_hypothesis_test

from cdp_tools.stack.redis_cluster import RedisCluster as LocalCluster
from cdp_tools.stack.redis_cluster import url_of
from cdp_tools.workerproc import WorkerProcess, free_port
from pipeline.settings import Settings, Topics
from tests.cluster import flush, local_cluster


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each test process gets a Redis database of its own: the tests
    flush their database, and topics and consumer groups are already per test."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    url = os.environ.get("CDP_REDIS_URL", "")
    if worker.startswith("gw") and url:
        base, _, db = url.rpartition("/")
        if db.isdigit():
            os.environ["CDP_REDIS_URL"] = f"{base}/{int(db) + 1 + int(worker[2:])}"


def _rank(item: pytest.Item) -> int:
    """Where a test's file goes in `make test`'s queue: the fault tests (the longest
    files), then files of property tests (one of them took 135 s), then the other
    integration tests, then the rest (short files, which fill in at the end)."""
    if item.get_closest_marker("faults"):
        return 0
    if is_hypothesis_test(getattr(item, "obj", None)):
        return 1
    return 2 if item.get_closest_marker("integration") else 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest files first: `make test` hands whole files (`--dist loadfile`) to its
    processes in this order (`--no-loadscope-reorder`), so that no long file starts last
    and runs on alone."""
    rank: dict[Path, int] = {}
    for item in items:
        rank[item.path] = min(rank.get(item.path, 3), _rank(item))
    items.sort(key=lambda item: rank[item.path])


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """The stack's addresses; fails (never skips) when Kafka or Redis is not running."""
    settings = Settings.from_env()
    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        redis.Redis.from_url(settings.redis_url).ping()
    except OSError as exc:
        pytest.fail(
            f"Kafka ({settings.kafka_bootstrap}) or Redis ({settings.redis_url}) is not "
            f"reachable: {exc}. Run the suite with `make test`, which starts them."
        )
    return settings


@dataclass
class PipelineEnv:
    """One test's own slice of the stack: topic prefix, consumer group, clean Redis DB."""

    settings: Settings
    env: dict[str, str]
    logs: Path

    @property
    def topics(self) -> Topics:
        return Topics(self.settings.topic_prefix)


def new_pipeline_env(base_settings: Settings, logs: Path) -> PipelineEnv:
    """A fresh slice: its own topic prefix and consumer group, the Redis DB (or cluster)
    emptied."""
    tag = uuid.uuid4().hex[:8]
    settings = replace(
        base_settings,
        topic_prefix=f"t{tag}.",
        app_id=f"cdp-test-{tag}",
        topic_partitions=4,
    )
    flush(settings.redis_url)
    env = {
        "CDP_TOPIC_PREFIX": settings.topic_prefix,
        "CDP_APP_ID": settings.app_id,
        "CDP_TOPIC_PARTITIONS": "4",
        "CDP_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CDP_REDIS_URL": settings.redis_url,
    }
    return PipelineEnv(settings, env, logs)


@pytest.fixture(scope="session")
def local_redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A local 3-master Redis Cluster of this test process."""
    with local_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def cluster_url(local_redis_cluster: LocalCluster) -> str:
    return url_of(local_redis_cluster)


@pytest.fixture
def pipeline_env(base_settings: Settings, tmp_path: Path) -> PipelineEnv:
    return new_pipeline_env(base_settings, tmp_path)


@contextmanager
def worker_starter(pipeline_env: PipelineEnv) -> Iterator[Callable[..., WorkerProcess]]:
    """Starts workers for a slice (waiting until each is ready); stops them all on exit."""
    started: list[WorkerProcess] = []

    def start(**extra_env: str) -> WorkerProcess:
        worker = WorkerProcess(
            free_port(),
            pipeline_env.logs / f"worker-{len(started)}.log",
            {**pipeline_env.env, **extra_env},
        ).start()
        started.append(worker)
        worker.wait_ready()
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
def start_worker(pipeline_env: PipelineEnv) -> Iterator[Callable[..., WorkerProcess]]:
    """Start a worker process for this test's slice; all are stopped at teardown."""
    with worker_starter(pipeline_env) as start:
        yield start


@pytest.fixture(scope="session", autouse=True)
def _no_proxy() -> None:
    # urllib must talk to the local workers directly whatever the environment says.
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"


@pytest.fixture
def worker_metrics_url(
    pipeline_env: PipelineEnv, start_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> str:
    """A running worker that has processed good and bad events (tests/ops): links, a
    merge, splits, evictions, a quarantine, a dropped identity and a dead letter, so
    that the panels' and alerts' label values are there to be checked."""
    from pipeline.resources import DEFAULT_IDENTITY_CONFIG, schema_text
    from tests.integration.support import envelope, ident, send, send_raw, settle

    # The default configuration with a breaker that trips on a phone's second move.
    strict = tmp_path / "identity.toml"
    strict.write_text(
        schema_text(DEFAULT_IDENTITY_CONFIG).replace(
            "max_reassignments = 5", "max_reassignments = 1"
        ),
        encoding="utf-8",
    )
    worker = start_worker(CDP_IDENTITY_CONFIG=str(strict))
    settings = pipeline_env.settings
    send(
        settings,
        [
            ("web", envelope(ident("ecid", "m-1"), ident("email", "m@example.com"), at=1)),
            (
                "crm",
                envelope(
                    ident("crm_id", "M-1"),
                    ident("email", "m@example.com"),
                    at=2,
                    kind="record",
                    attributes={"firstName": "Em"},
                ),
            ),
            ("pos", envelope(ident("email", "test@test.com"), at=3)),
            ("web", envelope(ident("ecid", "g-1"), at=4)),
            ("web", envelope(ident("email", "g@example.com"), at=5)),
            # 1 email and 57 cookies: past max_graph_size (50), the oldest are evicted.
            *(
                ("web", envelope(ident("email", "e@example.com"), *cookies, at=6 + n))
                for n, cookies in enumerate(
                    [ident("ecid", f"e-{n}-{i}") for i in range(19)] for n in range(3)
                )
            ),
        ],
    )
    send_raw(settings, pipeline_env.topics.events("web"), [b"\xff not an event"])
    settle(settings)
    send(settings, [("web", envelope(ident("ecid", "g-1"), ident("email", "g@example.com"), at=9))])
    # A phone that moves between 3 people, one at a time (the partitions could reorder
    # them): past the breaker's 1 reassignment it is quarantined.
    for n in range(3):
        person = ident("crm_id", f"Q-{n}")
        send(settings, [("crm", envelope(person, ident("phone", "+14155550199"), at=10 + n))])
        settle(settings)
    worker.get("/v1/profiles?namespace=crm_id&id=M-1")
    return worker.url + "/metrics"
