"""Faust's per-message machinery, trimmed through its public hooks.

Faust calls its monitor for every message and decodes every message through the
serializer registry; at thousands of events per second that is a large share of a
worker's CPU for metrics and decoding nobody uses. Here the monitor counts per batch
and raw topics hand Kafka's bytes straight to the agents.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import faust
from faust.sensors.prometheus import PrometheusMonitor
from faust.types import AppT, EventT, Message


class LeanMonitor(PrometheusMonitor):
    """Faust's Prometheus sensors (``faust_*``) without per-message work: the hooks the
    consumer and streams call for every message do nothing, and the agents count what
    they receive once per batch (``received``), with the end offsets of the partitions
    a batch came from. Commits, rebalances, assignments and send errors are still
    tracked as Faust tracks them. A subclass of
    Monitor, as the consumer calls ``track_tp_end_offset`` and ``on_tp_commit`` on it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The labelled series a batch updates, by topic and by partition: ``labels()``
        # takes a lock and builds its key on every call, a few per batch.
        self._received: dict[str, Any] = {}
        self._end_offset: dict[Any, Any] = {}

    def on_message_in(self, tp: Any, offset: int, message: Message) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: EventT) -> None:
        return None

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: EventT, state: Any = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Message) -> None:
        return None

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> None:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        return None

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        self._metrics.total_error_messages_sent.inc()

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        # Called for every fetched record: the gauge is set per batch (received).
        self.tp_end_offsets[tp] = offset

    def received(self, batch: Sequence[EventT]) -> None:
        """Count a batch of consumed messages, as on_message_in would have one by one,
        and publish the end offsets of the partitions it came from."""
        m = self._metrics
        m.messages_received.inc(len(batch))
        m.total_events.inc(len(batch))
        for topic, n in Counter(e.message.topic for e in batch).items():
            if (received := self._received.get(topic)) is None:
                received = self._received[topic] = m.messages_received_per_topics.labels(
                    topic=topic
                )
            received.inc(n)
        for tp in {e.message.tp for e in batch}:
            if (end := self.tp_end_offsets.get(tp)) is None:
                continue
            if (gauge := self._end_offset.get(tp)) is None:
                gauge = self._end_offset[tp] = m.topic_partition_end_offset.labels(
                    topic=tp.topic, partition=tp.partition
                )
            gauge.set(end)


class RawSchema(faust.Schema):
    """Key and value stay the bytes Kafka delivered: no codec registry on the way in."""

    def compile(self, app: AppT, **_: Any) -> Callable[..., Awaitable[EventT]]:
        # App.create_event, with the event class looked up once: reading a setting goes
        # through Faust's settings registry, a few microseconds every message.
        event_class = cast("Callable[..., EventT]", app.conf.Event)

        async def decode(message: Message, *, propagate: bool = False) -> EventT:
            return event_class(app, message.key, message.value, message.headers, message)

        return decode
