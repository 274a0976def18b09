"""The dependency probe without Kafka or Redis: what it asks them, what it concludes."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError

from pipeline.settings import Settings
from pipeline.worker import health as health_module
from pipeline.worker.health import Health, unreachable


class FakeAdmin:
    def __init__(self, fails: bool = False, hangs: bool = False) -> None:
        self.fails, self.hangs = fails, hangs
        self.asked: list[list[str] | None] = []

    async def describe_topics(self, topics: list[str] | None = None) -> list[Any]:
        self.asked.append(topics)
        if self.fails:
            raise ConnectionError("broker away")
        if self.hangs:
            await asyncio.Event().wait()  # a broker that accepts but never answers
        return []

    async def list_topics(self) -> list[str]:  # the whole cluster's metadata
        raise AssertionError("the probe asks for one topic, not every topic")


class FakeRedis:
    def __init__(self, hangs: bool = False, replicas: int = 0, fails: bool = False) -> None:
        self.hangs, self.replicas, self.fails = hangs, replicas, fails

    async def ping(self) -> bool:
        if self.fails:  # what redis-py says when nothing listens
            raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")
        if self.hangs:
            await asyncio.Event().wait()
        return True

    async def info(self, section: str) -> dict[str, Any]:
        assert section == "replication"
        return {"role": "master", "connected_slaves": self.replicas}


def health(admin: FakeAdmin, redis: FakeRedis | None = None, min_replicas: int = 0) -> Health:
    settings = replace(
        Settings.from_env(),
        topic_prefix="acme.",
        redis_min_replicas=min_replicas,
        kafka_bootstrap="kafka-1:9092,kafka-2:9092",
        redis_url="redis://:s3cret@redis:6379/0",
    )
    app = faust.App("health-test", broker="kafka://127.0.0.1:1")
    store = SimpleNamespace(redis=redis or FakeRedis())
    probe = Health(app, store, settings)  # type: ignore[arg-type]
    probe._admin = admin  # type: ignore[assignment]
    return probe


async def test_kafka_is_probed_with_the_metadata_of_one_owned_topic() -> None:
    """Every topic's metadata, every 2 s, cost the event loop milliseconds per hundred
    topics; one topic's answers whether Kafka does."""
    admin = FakeAdmin()
    probe = health(admin)
    await probe.probe()
    assert admin.asked == [["acme.internal.profile-updates"]]
    assert probe.state["kafka"] and probe.state["redis"]


async def test_a_broker_that_does_not_answer_is_reported_down() -> None:
    probe = health(FakeAdmin(fails=True))
    await probe.probe()
    assert probe.state["kafka"] is False and probe.state["redis"] is True


async def test_a_dependency_that_accepts_but_never_answers_is_reported_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found from outside: a stopped broker (SIGSTOP) kept /readyz at ready for the whole
    client timeout, 30 s; the probe waited for it all along."""
    monkeypatch.setattr(health_module, "PROBE_TIMEOUT_S", 0.01)
    probe = health(FakeAdmin(hangs=True), FakeRedis(hangs=True))
    probe.state.update(kafka=True, redis=True)
    await asyncio.wait_for(probe.probe(), 60)  # a bound for a hung test, not a timing
    assert probe.state["kafka"] is False and probe.state["redis"] is False


async def test_fewer_replicas_than_the_minimum_is_not_ready_and_says_why() -> None:
    """CDP_REDIS_MIN_REPLICAS above the replicas Redis has: every write waits and is
    retried, so the worker is not ready, and /readyz says which check and why."""
    probe = health(FakeAdmin(), FakeRedis(replicas=1), min_replicas=2)
    probe.state["partitions_assigned"] = True
    await probe.probe()
    assert probe.checks() == {
        "kafka": True,
        "redis": True,
        "partitions_assigned": True,
        "redis_replicas": False,
    }
    (why,) = probe.why().items()
    assert why[0] == "redis_replicas"
    assert why[1].startswith("CDP_REDIS_MIN_REPLICAS=2, and the Redis master holding the graph")
    assert "has 1 replicas now" in why[1]


async def test_replicas_are_checked_only_when_a_minimum_is_set() -> None:
    for minimum in (0, 1):
        probe = health(FakeAdmin(), FakeRedis(replicas=1), min_replicas=minimum)
        probe.state["partitions_assigned"] = True
        await probe.probe()
        assert ("redis_replicas" in probe.checks()) == (minimum > 0)
        assert probe.checks().get("redis_replicas", True) and probe.why() == {}


def one_line(said: str) -> bool:
    return bool(said) and "\n" not in said and "Traceback" not in said and len(said) < 300


async def test_an_unreachable_kafka_or_redis_says_why_in_one_line() -> None:
    """An operator reading /readyz learns which address did not answer and how, not only
    that a check is false; a password in CDP_REDIS_URL is not repeated."""
    probe = health(FakeAdmin(fails=True), FakeRedis(fails=True))
    await probe.probe()
    why = probe.why()
    assert set(why) == {"kafka", "redis", "partitions_assigned"}
    assert all(one_line(said) for said in why.values()), why
    assert why["kafka"] == "cannot reach Kafka at kafka-1:9092,kafka-2:9092: broker away"
    assert why["redis"].startswith("cannot reach Redis at redis:6379/0: Error 111 connecting")
    assert "s3cret" not in str(why)


@pytest.mark.parametrize(
    "error",
    [
        KafkaConnectionError("Unable to bootstrap from [('kafka-1', 9092, <AddressFamily...>)]"),
        NodeNotReadyError("Attempt to send a request to node which is not ready (node id 1)."),
    ],
)
def test_a_broker_that_refuses_connections_is_said_without_the_clients_internals(
    error: Exception,
) -> None:
    """What aiokafka raises with no broker listening (before and after the probe's client
    started), seen on a stopped broker: the text is about its own nodes and sockets."""
    assert unreachable("Kafka", "kafka-1:9092", error) == (
        "cannot reach Kafka at kafka-1:9092: no broker accepts a connection"
    )


async def test_a_dependency_that_does_not_answer_in_time_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health_module, "PROBE_TIMEOUT_S", 0.01)
    probe = health(FakeAdmin(hangs=True), FakeRedis(hangs=True))
    await asyncio.wait_for(probe.probe(), 60)  # a bound for a hung test, not a timing
    assert probe.why()["kafka"] == "Kafka at kafka-1:9092,kafka-2:9092 did not answer within 0.01 s"
    assert probe.why()["redis"] == "Redis at redis:6379/0 did not answer within 0.01 s"


async def test_a_kafka_client_that_cannot_start_is_closed_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The probe's admin client is made on first success: one whose start failed (no
    broker yet) is closed, and a start that hangs is bounded like every probe."""
    monkeypatch.setattr(health_module, "PROBE_TIMEOUT_S", 0.01)
    made: list[StartingAdmin] = []

    class StartingAdmin(FakeAdmin):
        closed = False

        async def start(self) -> None:
            await asyncio.Event().wait()

        async def close(self) -> None:
            self.closed = True

    def admin_client(settings: Settings) -> StartingAdmin:
        made.append(StartingAdmin())
        return made[-1]

    monkeypatch.setattr(health_module, "admin_client", admin_client)
    probe = health(FakeAdmin())
    probe._admin = None
    await asyncio.wait_for(probe.probe(), 60)
    assert probe.state["kafka"] is False and probe.state["redis"] is True
    assert "did not answer within" in probe.why()["kafka"]
    assert [admin.closed for admin in made] == [True] and probe._admin is None


async def test_a_worker_waiting_for_its_partitions_says_so() -> None:
    probe = health(FakeAdmin())
    await probe.probe()
    assert probe.checks()["partitions_assigned"] is False
    assert "assign" in probe.why()["partitions_assigned"]
    probe.state["partitions_assigned"] = True
    assert probe.why() == {}
