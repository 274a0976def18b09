"""The topics the pipeline owns and the configuration it creates them with (CONTRACT 2)."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.admin import NewTopic

from pipeline.settings import VARIABLES, Settings, Topics
from pipeline.topics import TopicConfigError, ensure_topics, owned_topics


def test_every_owned_topic_and_the_channel_pattern_follow_the_prefix() -> None:
    topics = Topics("acme-7.")
    assert all(spec.name.startswith("acme-7.") for spec in owned_topics(topics))
    pattern = re.compile(topics.events_pattern)
    assert pattern.match("acme-7.events.kiosk")
    assert not pattern.match("cdp.events.kiosk") and not pattern.match("acme-7xevents.kiosk")


def test_topics_that_name_deleted_identities_are_not_kept_for_ever() -> None:
    """Found from outside: receipts (the identities a privacy delete removed, as given)
    were compacted only, so the last receipt of every request id stayed for ever."""
    topics = Topics("cdp.")
    specs = {spec.name: spec.config for spec in owned_topics(topics)}
    for name in (topics.privacy_receipts, topics.privacy_requests, topics.deadletter):
        assert "delete" in specs[name]["cleanup.policy"].split(","), name
        assert int(specs[name]["retention.ms"]) > 0, name


class _Admin:
    """What ensure_topics asks of the admin client; creation answers as Kafka 3.9 does when
    the replication factor exceeds the brokers (aiokafka returns, it does not raise)."""

    def __init__(self) -> None:
        self.created: list[str] = []

    async def list_topics(self) -> list[str]:
        return ["cdp.profiles"]

    async def create_topics(self, new_topics: list[NewTopic]) -> Any:
        self.created += [t.name for t in new_topics]
        message = (
            "Unable to replicate the partition 3 time(s): The target replication factor of 3 "
            "cannot be reached because only 1 broker(s) are registered."
        )
        errors = [(t.name, 38, message) for t in new_topics]
        return SimpleNamespace(topic_errors=[*errors, ("cdp.profiles", 36, "exists")])

    async def describe_configs(self, resources: list[Any]) -> list[Any]:
        raise AssertionError("a topic Kafka refused was looked at")


async def test_a_topic_kafka_refuses_to_create_is_reported_with_its_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found from outside: CDP_TOPIC_REPLICATION=3 on one broker said 'cdp.profiles has
    cleanup.policy=None, not compact' (once it existed) or nothing at all."""
    for variable in VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)
    monkeypatch.setenv("CDP_TOPIC_REPLICATION", "3")
    admin = _Admin()
    with pytest.raises(TopicConfigError) as refused:
        await ensure_topics(Settings.from_env(), admin)  # type: ignore[arg-type]
    message = str(refused.value)
    assert message.startswith(f"Kafka refused to create {admin.created[0]}")
    assert "only 1 broker(s) are registered" in message
    assert "CDP_TOPIC_PARTITIONS=4, CDP_TOPIC_REPLICATION=3" in message
    assert "cdp.profiles" not in message.partition(":")[0]
