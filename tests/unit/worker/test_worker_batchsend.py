"""Records handed to aiokafka a batch per partition, without Kafka.

The producer is reached through a private method of faust-streaming: the first test
fails when the pinned upstream methods change, so whoever upgrades Faust re-reads them
against pipeline/worker/batchsend.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Awaitable
from typing import Any

import faust
import pytest
from aiokafka.errors import KafkaError
from faust.transport.drivers.aiokafka import Producer
from faust.types import TP

from pipeline.worker.batchsend import BatchProducer

# sha256 of faust-streaming 0.15.3's aiokafka Producer methods this module relies on.
UPSTREAM_SHA256 = {
    "_ensure_producer": "5592a4bbdf2513253f98233a4eac931ded2a531a86f269cddcc33bc3f5827db5",
    "key_partition": "c713c4d7b421ecdf0c0d00d500d142bd312466527c86605fe7f2d4276d426d4f",
}


def test_the_upstream_producer_methods_are_the_ones_it_was_written_against() -> None:
    assert faust.__version__ == "0.15.3"
    for name, digest in UPSTREAM_SHA256.items():
        source = inspect.getsource(getattr(Producer, name))
        assert hashlib.sha256(source.encode()).hexdigest() == digest, (
            f"faust's Producer.{name} changed: compare it with pipeline/worker/batchsend.py, "
            "then update the hash"
        )


class Batch:
    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[bytes | None, bytes | None, Any]] = []

    def append(self, *, timestamp: Any, key: Any, value: Any, headers: Any) -> object | None:
        if len(self.records) == self.room:
            return None
        self.records.append((key, value, headers))
        return object()


class Kafka:
    """aiokafka's producer: batches of ``room`` records, deliveries settled by the test."""

    def __init__(self, room: int = 10) -> None:
        self.room = room
        self.sent: list[tuple[str, int, list[Any]]] = []
        self.deliveries: list[asyncio.Future[None]] = []
        self.metadata: list[str] = []

    async def partitions_for(self, topic: str) -> set[int]:
        self.metadata.append(topic)
        return {0, 1}

    def create_batch(self) -> Batch:
        return Batch(self.room)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> Awaitable[None]:
        self.sent.append((topic, partition, [key for key, _, _ in batch.records]))
        self.deliveries.append(asyncio.get_running_loop().create_future())
        return self.deliveries[-1]


class Faust:
    def __init__(self, kafka: Kafka) -> None:
        self.kafka = kafka

    def _ensure_producer(self) -> Kafka:
        return self.kafka

    def key_partition(self, topic: str, key: bytes) -> TP:
        return TP(topic, key[0] % 2)


def producer(kafka: Kafka) -> BatchProducer:
    return BatchProducer(Faust(kafka))  # type: ignore[arg-type]


def settle(kafka: Kafka) -> None:
    for delivery in kafka.deliveries:
        delivery.set_result(None)


async def test_records_go_in_order_a_batch_per_partition_once_metadata_is_known() -> None:
    kafka = Kafka()
    records = [("a", bytes([k]), b"v", None) for k in (0, 1, 2, 3)] + [("b", b"\x01", b"v", [])]
    delivered = await producer(kafka).send_all(records)
    assert kafka.metadata == ["a", "b"]
    assert kafka.sent == [
        ("a", 0, [b"\x00", b"\x02"]),
        ("a", 1, [b"\x01", b"\x03"]),
        ("b", 1, [b"\x01"]),
    ]
    settle(kafka)
    await delivered


async def test_a_full_batch_is_sent_and_the_next_one_started() -> None:
    kafka = Kafka(room=2)
    delivered = await producer(kafka).send_all([("a", b"\x00", bytes([i]), None) for i in range(5)])
    assert [len(keys) for _, _, keys in kafka.sent] == [2, 2, 1]
    settle(kafka)
    await delivered


async def test_delivered_once_every_batch_is_and_failed_if_one_is() -> None:
    kafka = Kafka()
    delivered = asyncio.ensure_future(
        await producer(kafka).send_all(
            [("a", bytes([k]), b"v", None) for k in (0, 1)] + [("b", b"\x00", b"v", None)]
        )
    )
    first, second, third = kafka.deliveries
    first.set_exception(KafkaError("first"))
    third.set_result(None)
    await asyncio.sleep(0)
    assert not delivered.done()  # the second is still on its way
    second.set_exception(KafkaError("second"))
    with pytest.raises(KafkaError, match="first"):
        await delivered
