"""Handing a batch's records to Kafka a producer batch per partition.

Faust's ``Producer.send`` and aiokafka's ``send`` per record (metadata and size checks,
a partition lookup, a future per record, settled one by one on delivery) were a tenth
of a worker's CPU, two records per event. aiokafka's public
``create_batch``/``send_batch`` fill a batch per partition instead, one future per
batch. Records are partitioned as ``send`` partitions them (Faust's ``key_partition``,
the configured partitioner) and keep their order within a partition.

aiokafka's producer is the one Faust started (``Producer._ensure_producer``, private:
faust-streaming is pinned and tests/unit/worker/test_worker_batchsend.py fails when it
changes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from aiokafka.producer.message_accumulator import BatchBuilder
from faust.types import TP, ProducerT

from pipeline.publish.sender import OutRecord


class KafkaProducer(Protocol):
    """What is used of aiokafka's ``AIOKafkaProducer``."""

    async def partitions_for(self, topic: str) -> Any: ...

    def create_batch(self) -> BatchBuilder: ...

    async def send_batch(
        self, batch: BatchBuilder, topic: str, *, partition: int
    ) -> Awaitable[Any]: ...


async def all_of(pending: Sequence[Awaitable[Any]]) -> None:
    """Every delivery, awaited in turn: the producer settles a request's batches at once,
    so this suspends about once per request, where ``asyncio.gather`` ran a callback per
    awaitable. A failure is raised once all have settled."""
    failure: BaseException | None = None
    for delivery in pending:
        try:
            await delivery
        except Exception as exc:  # each one retrieved, so none is left unobserved
            failure = failure or exc
    if failure is not None:
        raise failure


class BatchProducer:
    def __init__(self, producer: ProducerT) -> None:
        self.faust = producer

    def _kafka(self) -> KafkaProducer:
        return self.faust._ensure_producer()  # type: ignore[attr-defined]

    async def send_all(self, records: Sequence[OutRecord]) -> Awaitable[None]:
        """Queue ``records``; the result resolves once the broker has them all."""
        producer = self._kafka()
        batches: dict[TP, BatchBuilder] = {}
        deliveries: list[Awaitable[Any]] = []
        topics: set[str] = set()
        for topic, key, value, headers in records:
            if topic not in topics:
                await producer.partitions_for(topic)  # metadata, which key_partition reads
                topics.add(topic)
            tp = self.faust.key_partition(topic, key)  # type: ignore[arg-type]  # None: any
            batch = batches.get(tp)
            if batch is None:
                batch = batches[tp] = producer.create_batch()
            while batch.append(key=key, value=value, timestamp=None, headers=headers or []) is None:
                # Full (a batch takes the first record whatever its size): send, go on.
                deliveries.append(await producer.send_batch(batch, topic, partition=tp.partition))
                batch = batches[tp] = producer.create_batch()
        for tp, batch in batches.items():
            deliveries.append(await producer.send_batch(batch, tp.topic, partition=tp.partition))
        return all_of(deliveries)
