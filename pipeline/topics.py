"""The topics the pipeline owns, created with their configuration (CONTRACT 2).

Nothing relies on broker auto-creation: the compacted profile topic in particular
would come out with the delete policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from pipeline.kafka import client_kwargs
from pipeline.records import OUTPUT_MAX_RECORD_BYTES
from pipeline.settings import Settings, Topics

log = logging.getLogger(__name__)
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    config: dict[str, str]


def owned_topics(topics: Topics) -> list[TopicSpec]:
    week = str(7 * DAY_MS)
    # Whatever the broker's default: these two carry what producers sent.
    sized = {"max.message.bytes": str(OUTPUT_MAX_RECORD_BYTES)}
    return [
        TopicSpec(
            topics.profiles,
            {"cleanup.policy": "compact", "min.compaction.lag.ms": "0", **sized},
        ),
        TopicSpec(topics.deadletter, {"cleanup.policy": "delete", "retention.ms": week, **sized}),
        TopicSpec(topics.graph_changes, {"cleanup.policy": "delete", "retention.ms": week}),
        TopicSpec(topics.privacy_requests, {"cleanup.policy": "delete", "retention.ms": week}),
        # A receipt names the identities it deleted: kept a week like the request, not
        # for ever (compaction alone never drops a request id's last receipt).
        TopicSpec(
            topics.privacy_receipts, {"cleanup.policy": "compact,delete", "retention.ms": week}
        ),
        TopicSpec(
            topics.profile_updates, {"cleanup.policy": "delete", "retention.ms": str(DAY_MS)}
        ),
    ]


class TopicConfigError(RuntimeError):
    pass


async def ensure_topics(settings: Settings, admin: AIOKafkaAdminClient) -> None:
    """Create missing owned topics; refuse to run on a profile topic that is not compacted."""
    topics = Topics(settings.topic_prefix)
    specs = owned_topics(topics)
    existing = set(await admin.list_topics())
    missing = [
        NewTopic(
            s.name, settings.topic_partitions, settings.topic_replication, topic_configs=s.config
        )
        for s in specs
        if s.name not in existing
    ]
    if missing:
        with contextlib.suppress(TopicAlreadyExistsError):  # another worker was quicker
            _refused(settings, await admin.create_topics(missing))
        log.info("created topics: %s", ", ".join(t.name for t in missing))
    policy = None
    for _ in range(50):  # a topic created a moment ago may not describe its config yet
        policy = await topic_config(admin, topics.profiles, "cleanup.policy")
        if policy is not None:
            break
        await asyncio.sleep(0.2)
    if policy != "compact":
        raise TopicConfigError(
            f"{topics.profiles} has cleanup.policy={policy}, not compact: its last value per "
            f"key would not survive retention. Fix it with kafka-configs --alter "
            f"--add-config cleanup.policy=compact, or delete the topic."
        )


def _refused(settings: Settings, response: Any) -> None:
    """aiokafka returns Kafka's per-topic errors rather than raising them: a replication
    factor above the brokers, a denied ACL, a broker policy."""
    refused: dict[str, list[str]] = {}  # Kafka's reason -> the topics it refused for it
    for name, code, message in response.topic_errors:
        if code not in (0, TopicAlreadyExistsError.errno):
            refused.setdefault(message or for_code(code).__name__, []).append(name)
    if refused:
        what = "; ".join(f"{', '.join(names)}: {reason}" for reason, names in refused.items())
        raise TopicConfigError(
            f"Kafka refused to create {what} (CDP_TOPIC_PARTITIONS={settings.topic_partitions}, "
            f"CDP_TOPIC_REPLICATION={settings.topic_replication}): set them to what the cluster "
            "allows, or create the topics yourself (README, Topics)."
        )


async def deadletter_bytes(admin: AIOKafkaAdminClient, topics: Topics) -> int:
    """The largest dead letter to send: what the worker's producer and the dead-letter
    topic both take (a topic created earlier, or by an operator, may take less)."""
    configured = await topic_config(admin, topics.deadletter, "max.message.bytes")
    limit = min(OUTPUT_MAX_RECORD_BYTES, int(configured or OUTPUT_MAX_RECORD_BYTES))
    if limit < OUTPUT_MAX_RECORD_BYTES:
        log.warning(
            "%s takes records up to %d bytes (max.message.bytes): a dead letter larger than "
            "that carries the first bytes of the original only (header cdp-truncated). "
            "Raise it with kafka-configs --alter --add-config max.message.bytes=%d.",
            topics.deadletter,
            limit,
            OUTPUT_MAX_RECORD_BYTES,
        )
    return limit


async def topic_config(admin: AIOKafkaAdminClient, topic: str, key: str) -> str | None:
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    for response in responses:
        for resource in response.resources:
            for entry in resource[4]:
                if entry[0] == key:
                    return str(entry[1])
    return None


async def event_topics(admin: AIOKafkaAdminClient, topics: Topics) -> list[str]:
    pattern = re.compile(topics.events_pattern)
    return sorted(t for t in await admin.list_topics() if pattern.match(t))


async def partitions_of(admin: AIOKafkaAdminClient, names: list[str]) -> list[TopicPartition]:
    """Every partition of the named topics (a consumer only knows its subscriptions')."""
    if not names:
        return []
    described = await admin.describe_topics(names)
    return [
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if t["error_code"] == 0
        for p in t["partitions"]
    ]


def admin_client(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_kwargs(settings))
