"""Writing a batch's results to Kafka and waiting until the broker has them.

The caller acknowledges the batch's input only after ``send_*`` returns, so a crash
in between replays the input (idempotent) instead of losing an output.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, Protocol

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from pipeline import metrics
from pipeline.publish.encode import CONTENT_TYPE, OPAQUE, content_type, encode
from pipeline.publish.profiles import Publication
from pipeline.records import OUTPUT_MAX_RECORD_BYTES, DeadLetter, Outputs
from pipeline.settings import Topics

Headers = list[tuple[str, bytes]]
TRUNCATED = "cdp-truncated"
log = logging.getLogger(__name__)


def _size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """The record's size as the producer checks it against max_request_size; an upper
    bound of what the broker checks against max.message.bytes (a record larger than the
    producer's batch size travels alone in its batch)."""
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)


def deadletter_record(d: DeadLetter, limit: int) -> tuple[bytes | None, bytes | None, Headers]:
    """Key, value and headers of a dead letter: the original key and bytes, unless the
    record would pass ``limit`` (what the dead-letter topic and the producer take); then
    their first bytes, the value cut before the key, and a ``cdp-truncated`` header
    with the original sizes: a record the producer or the broker refused would crash the
    agent again on every retry of its batch."""
    key, value = d.record.key, d.record.value
    # The bytes are the producer's, but a reader must find one content type: opaque.
    headers = [h for h in d.headers() if h[0] != CONTENT_TYPE] + [(CONTENT_TYPE, OPAQUE)]
    if _size(key, value, headers) <= limit:
        return key, value, headers
    original = f"key={len(key or b'')} value={len(value or b'')}"
    headers.append((TRUNCATED, original.encode()))
    # Each byte cut takes at least a byte off the size (its length's varint only shrinks).
    over = _size(key, value, headers) - limit
    cut = min(over, len(value or b""))
    value = value[: len(value) - cut] if value else value
    key = key[: max(0, len(key) - (over - cut))] if key else key
    return key, value, headers


OutRecord = tuple[str, bytes | None, bytes | None, Headers | None]  # topic, key, value


class Producer(Protocol):
    async def send_all(self, records: Sequence[OutRecord]) -> Awaitable[Any]:
        """Queue ``records`` in order; the result resolves once the broker has them all."""
        ...


class Sender:
    def __init__(
        self, producer: Producer, topics: Topics, encoding: str, deadletter_bytes: int
    ) -> None:
        self.producer = producer
        self.topics = topics
        self.encoding = encoding
        self.deadletter_bytes = deadletter_bytes
        self._ours: Headers = [content_type(encoding)]

    def destinations(self, *sends: str) -> tuple[str, ...]:
        """The topics the named send/queue methods write to (for ``cdp topology``)."""
        t = self.topics
        where = {
            "send_outputs": (t.deadletter, t.graph_changes),
            "queue_publications": (t.profiles,),
            "send_receipt": (t.privacy_receipts,),
        }
        return tuple(topic for send in sends for topic in where[send])

    async def _queue(self, records: Iterable[OutRecord]) -> Awaitable[Any]:
        """Hand the records to the producer in order; the result resolves once the
        broker has them all (a caller may start its next batch meanwhile)."""
        return await self.producer.send_all(list(records))

    async def _all(self, records: Iterable[OutRecord]) -> None:
        await (await self._queue(records))

    async def send_outputs(self, out: Outputs) -> None:
        await (await self.queue_outputs(out))

    async def queue_outputs(self, out: Outputs) -> Awaitable[Any]:
        t = self.topics
        records: list[OutRecord] = [
            (t.deadletter, *deadletter_record(d, self.deadletter_bytes)) for d in out.deadletters
        ]
        records += [
            (
                t.graph_changes,
                str(c.get("profile_id", "")).encode(),
                encode(c, self.encoding),
                self._ours,
            )
            for c in out.changes
        ]
        delivered = await self._queue(records)
        # Counted here, where every graph change (stitch, privacy, release) leaves; per
        # batch and type, not per change.
        for change_type, n in Counter(change["type"] for change in out.changes).items():
            metrics.GRAPH_CHANGES.labels(change_type).inc(n)
        return delivered

    def publishable(self, publications: Sequence[Publication]) -> list[Publication]:
        """The publications the producer takes. One it refused would crash the publish
        agent on every retry of its batch and stall its partition's commits, so a document
        past a record's limit is left out, loudly (a log line and
        ``cdp_profiles_unpublished_total``): the topic keeps the profile's previous
        record, and the lookup API serves the whole profile."""
        return [p for p in publications if self._fits(p.profile_id.encode(), p.value)]

    async def queue_publications(self, publications: Sequence[Publication]) -> Awaitable[Any]:
        return await self._queue(
            (self.topics.profiles, p.profile_id.encode(), p.value, self._ours) for p in publications
        )

    def _fits(self, key: bytes, value: bytes | None) -> bool:
        if value is None or len(key) + len(value) < OUTPUT_MAX_RECORD_BYTES // 2:
            return True  # nearly every document: no size estimate (~0.5 us) per record
        size = _size(key, value, self._ours)
        if size <= OUTPUT_MAX_RECORD_BYTES:
            return True
        metrics.PROFILES_UNPUBLISHED.labels("too_large").inc()
        log.error(
            "profile %s not published: its document takes %d bytes, more than the %d a "
            "record of %s may; the topic keeps its previous record",
            key.decode(),
            size,
            OUTPUT_MAX_RECORD_BYTES,
            self.topics.profiles,
        )
        return False

    async def send_receipt(self, request_id: str, receipt: dict[str, Any]) -> None:
        await self._all(
            [
                (
                    self.topics.privacy_receipts,
                    request_id.encode(),
                    encode(receipt, self.encoding),
                    self._ours,
                )
            ]
        )
