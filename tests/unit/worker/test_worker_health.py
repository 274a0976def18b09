"""The dependency probe without Kafka or Redis: what it asks them, what it concludes."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import faust

from pipeline.settings import Settings
from pipeline.worker.health import Health


class FakeAdmin:
    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.asked: list[list[str] | None] = []

    async def describe_topics(self, topics: list[str] | None = None) -> list[Any]:
        self.asked.append(topics)
        if self.fails:
            raise ConnectionError("broker away")
        return []

    async def list_topics(self) -> list[str]:  # the whole cluster's metadata
        raise AssertionError("the probe asks for one topic, not every topic")


class FakeRedis:
    async def ping(self) -> bool:
        return True


def health(admin: FakeAdmin) -> Health:
    settings = replace(Settings.from_env(), topic_prefix="acme.")
    app = faust.App("health-test", broker="kafka://127.0.0.1:1")
    probe = Health(app, SimpleNamespace(redis=FakeRedis()), settings)  # type: ignore[arg-type]
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
