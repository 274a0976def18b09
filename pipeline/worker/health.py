"""Readiness, dependency probes, consumer lag and discovery of new channel topics."""

from __future__ import annotations

import logging
import re
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient
from faust.types import TopicT

from pipeline import metrics
from pipeline.identity.commands import GraphStore
from pipeline.settings import Settings, Topics
from pipeline.topics import admin_client

log = logging.getLogger(__name__)

# Faust's conductor waits 45 s before resubscribing so that agent restarts batch up;
# a new channel topic should be consumed within seconds instead.
RESUBSCRIBE_DELAY_S = 1.0


class Health:
    def __init__(self, app: faust.App, store: GraphStore, settings: Settings) -> None:
        self.app = app
        self.store = store
        self.settings = settings
        topics = Topics(settings.topic_prefix)
        self.state = {"kafka": False, "redis": False, "partitions_assigned": False}
        self._admin: AIOKafkaAdminClient | None = None
        self._events_topic: TopicT | None = None
        self._pattern = re.compile(topics.events_pattern)
        # mode's signal stubs do not accept bound async methods; the call is as documented.
        app.on_rebalance_complete.connect(self._on_rebalanced)  # type: ignore[arg-type]
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]

    async def _on_rebalanced(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self.state["partitions_assigned"] = True
        self._publish_ready()

    async def _on_revoked(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self.state["partitions_assigned"] = False
        self._publish_ready()

    def watch_event_topics(self, topic: TopicT) -> None:
        self._events_topic = topic

    def checks(self) -> dict[str, bool]:
        return dict(self.state)

    def _publish_ready(self) -> None:
        metrics.READY.set(1 if all(self.state.values()) else 0)

    async def probe(self) -> None:
        """Runs every few seconds: the answers feed /readyz and the metrics."""
        try:
            await self.store.redis.ping()
            self.state["redis"] = True
        except Exception as exc:
            self.state["redis"] = False
            log.warning("redis unreachable: %s", exc)
        try:
            await self._discover()
            self.state["kafka"] = True
        except Exception as exc:
            self.state["kafka"] = False
            log.warning("kafka unreachable: %s", exc)
        metrics.UP.labels("redis").set(int(self.state["redis"]))
        metrics.UP.labels("kafka").set(int(self.state["kafka"]))
        self._publish_ready()
        self._lag()

    async def _discover(self) -> None:
        if self._admin is None:
            admin = admin_client(self.settings)
            await admin.start()
            self._admin = admin
        names = await self._admin.list_topics()
        topic = self._events_topic
        if topic is None:
            return
        new = sorted(n for n in names if self._pattern.match(n) and n not in topic.topics)
        if new:
            log.info("new channel topics: %s", ", ".join(new))
            conductor: Any = self.app.topics
            # The agent consumes clones of our topic; clones share its config mapping.
            for channel in [topic, *conductor]:
                if channel is topic or getattr(channel, "config", None) is topic.config:
                    channel.topics = [*channel.topics, *new]
            conductor._resubscribe_sleep_lock_seconds = RESUBSCRIBE_DELAY_S
            conductor._flag_changes()

    def _lag(self) -> None:
        consumer: Any = self.app.consumer
        try:
            assignment = consumer.assignment()
        except Exception:
            return
        for tp in assignment:
            highwater = consumer.highwater(tp)
            # Faust keeps the last offset it read per partition only privately.
            read = consumer._read_offset.get(tp)
            if highwater is None:
                continue
            position = read + 1 if read is not None else 0
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(
                max(0, highwater - position)
            )
