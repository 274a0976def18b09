"""The hot path's pieces around Faust, without Kafka: batches that coalesce only a backlog,
raw decoding, the cached partitioner and the per-batch monitor."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import faust
from aiokafka.partitioner import DefaultPartitioner
from faust.sensors.prometheus import FaustMetrics
from faust.types import TP, EventT, Message
from prometheus_client import CollectorRegistry

from pipeline.partition import cached_partitioner
from pipeline.worker.batches import batches
from pipeline.worker.lean import LeanMonitor, RawSchema


def app() -> faust.App:
    a = faust.App("lean-test", broker="kafka://127.0.0.1:1")
    a.flow_control.resume()
    return a


def values(event: EventT) -> tuple[Any]:
    return (event.value,)


async def test_a_batch_is_the_backlog_behind_its_first_event_up_to_its_size() -> None:
    stream = app().channel().stream()
    for i in range(3):
        await stream.channel.send(value=i)
    it = aiter(batches(stream, 2, values))
    assert (await anext(it))[1] == [0, 1]  # full
    events, items = await anext(it)
    assert [e.value for e in events] == items == [2]  # nothing buffered behind it
    await stream.channel.send(value=3)
    assert (await anext(it))[1] == [3]  # idle: at once, alone


async def test_a_batch_holds_at_most_its_size_in_items_and_never_splits_an_event() -> None:
    stream = app().channel().stream()
    for n in (2, 2, 3, 0, 9, 1):  # an event of n items (a record of n notes)
        await stream.channel.send(value=n)
    it = aiter(batches(stream, 5, lambda e: [e.value] * e.value))
    sizes = [[e.value for e in (await anext(it))[0]] for _ in range(4)]
    # 2+2, as 3 more would pass 5; 3 and the empty one; 9 alone; the rest.
    assert sizes == [[2, 2], [3, 0], [9], [1]]


async def test_a_batch_does_not_wait_for_events_that_arrive_while_it_is_taken() -> None:
    """Faust lets other tasks run between two events of a stream: what they deliver
    meanwhile belongs to the next batch, or a steady input would keep a batch open."""
    stream = app().channel().stream()
    for i in range(2):
        await stream.channel.send(value=i)

    async def steady() -> None:  # one more event each time the loop turns
        for i in range(2, 50):
            await stream.channel.send(value=i)
            await asyncio.sleep(0)

    feeder = asyncio.ensure_future(steady())
    try:
        first = (await anext(aiter(batches(stream, 100, values))))[1]
    finally:
        feeder.cancel()
    assert first == list(range(len(first)))
    assert len(first) < 10  # the backlog when it opened, not all 50 that kept coming


async def test_raw_topics_hand_over_kafka_bytes_without_a_codec() -> None:
    a = app()
    message = Message("t", 0, 7, 0.0, 0, [("h", b"1")], b"\xffkey", b"\x00value", None)
    event = await RawSchema().compile(a)(message)
    assert (event.key, event.value, event.message.offset) == (b"\xffkey", b"\x00value", 7)
    # What App.create_event makes, its event class looked up once instead of per message.
    upstream = a.create_event(message.key, message.value, message.headers, message)
    assert type(event) is type(upstream) and vars(event) == vars(upstream)


def test_the_cached_partitioner_agrees_with_kafkas_default() -> None:
    rng = random.Random(7)
    partitions = list(range(12))
    for _ in range(2000):
        key = rng.randbytes(rng.randrange(0, 40))
        for n in (1, 4, 12):
            expected = DefaultPartitioner()(key, partitions[:n], partitions[:n])
            assert cached_partitioner(key, partitions[:n], partitions[:n]) == expected
    assert cached_partitioner(None, partitions, [3]) == 3


def test_the_monitor_counts_per_batch_not_per_message() -> None:
    registry = CollectorRegistry()
    monitor = LeanMonitor(metrics=FaustMetrics.create(registry, "faust"))
    message = Message("cdp.events.web", 0, 1, 0.0, 0, [], None, b"{}", None)
    monitor.on_message_in(TP("cdp.events.web", 0), 1, message)
    assert registry.get_sample_value("faust_messages_received_total") == 0

    events = [
        faust.Event(app(), None, b"{}", [], Message(t, 0, 1, 0.0, 0, [], None, b"{}", None))
        for t in ("cdp.events.web", "cdp.events.web", "cdp.events.pos")
    ]
    monitor.track_tp_end_offset(TP("cdp.events.web", 0), 42)
    end_offset = "faust_topic_partition_end_offset"
    assert (
        registry.get_sample_value(end_offset, {"topic": "cdp.events.web", "partition": "0"}) is None
    )
    monitor.received(events)
    assert registry.get_sample_value("faust_messages_received_total") == 3
    assert (
        registry.get_sample_value(end_offset, {"topic": "cdp.events.web", "partition": "0"}) == 42
    )
    per_topic = "faust_messages_received_per_topic_total"
    assert registry.get_sample_value(per_topic, {"topic": "cdp.events.web"}) == 2
    assert registry.get_sample_value(per_topic, {"topic": "cdp.events.pos"}) == 1

    # The next batch counts on the series kept from the first.
    monitor.track_tp_end_offset(TP("cdp.events.web", 0), 50)
    monitor.received(events[:1])
    assert registry.get_sample_value(per_topic, {"topic": "cdp.events.web"}) == 3
    assert (
        registry.get_sample_value(end_offset, {"topic": "cdp.events.web", "partition": "0"}) == 50
    )
