"""The stitching stage: records -> ingest -> identity graph, one Redis call per batch."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

from redis.exceptions import ResponseError

from pipeline import metrics
from pipeline.identity.arguments import StitchEvent
from pipeline.identity.commands import GraphStore
from pipeline.identity.config import NAMESPACE_NAME, IdentityConfig
from pipeline.identity.replies import StitchResult
from pipeline.ingest import flatten_attributes, parse_event
from pipeline.ingest.reasons import REJECT_REASONS
from pipeline.model import Event, Rejected
from pipeline.notes import UpdateNote
from pipeline.publish.encode import pack
from pipeline.records import DeadLetter, Outputs, Record
from pipeline.retry import until_redis_answers
from pipeline.settings import Topics
from pipeline.timefmt import iso_ms

log = logging.getLogger(__name__)
MAX_UNKNOWN_NAMESPACE_LABELS = 50
# A consumed record and its event as Redis gets it. The ``Event`` is not kept: a batch's
# events outlive hundreds of allocations, and each object they hold is one more the
# collector walks (the stitch event has the id and time the rest of the stage needs).
Staged = tuple[Record, StitchEvent]


class StagedBatch(NamedTuple):
    """A batch ingested and not yet stitched."""

    events: list[Staged]
    deadletters: list[DeadLetter]  # of the records ingest refused
    ingest_ms: int


def to_stitch_event(event: Event, record: Record) -> StitchEvent:
    kind = event.type
    summary = {
        "event_id": event.event_id,
        "timestamp": iso_ms(event.timestamp_ms),
        "channel": event.channel,
        "type": kind,
    }
    return StitchEvent(
        event_id=event.event_id,
        timestamp_ms=event.timestamp_ms,
        channel=event.channel,
        type=kind,
        identities=[i.key for i in event.identities],
        primary=event.primary.key,
        attributes={
            path: pack(value) for path, value in flatten_attributes(event.attributes).items()
        },
        summary=pack(summary),
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )


class Stitcher:
    """Turns a batch of consumed records into graph updates and the records to send."""

    def __init__(
        self, store: GraphStore, config: IdentityConfig, topics: Topics, max_event_bytes: int
    ) -> None:
        self.store = store
        self.config = config
        self.topics = topics
        self.max_event_bytes = max_event_bytes
        self._unknown_seen: set[str] = set()

    def parse(self, record: Record, out: Outputs) -> Event | None:
        try:
            event = parse_event(
                record.value,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                config=self.config,
                channel_default=self.topics.channel_of(record.topic),
                max_bytes=self.max_event_bytes,
            )
        except Rejected as rejected:
            self._deadletter(out, record, rejected.reason, rejected.detail)
            return None
        for dropped in event.dropped:
            label = self._namespace_label(dropped.namespace)
            metrics.IDENTITIES_DROPPED.labels(label, dropped.reason).inc()
        return event

    def _namespace_label(self, namespace: str) -> str:
        """The namespace as a metric label (CONTRACT 3 counts by namespace). Unknown ones
        come from producers: well-formed names are kept up to a bound, so a misbehaving
        producer cannot grow the series without limit; the rest count as ``other``."""
        if namespace in self.config.namespaces or namespace in self._unknown_seen:
            return namespace
        if len(self._unknown_seen) < MAX_UNKNOWN_NAMESPACE_LABELS and NAMESPACE_NAME.match(
            namespace
        ):
            self._unknown_seen.add(namespace)
            return namespace
        return "other"

    def _deadletter(
        self, out: Outputs, record: Record, reason: str, detail: str, event_id: str = ""
    ) -> None:
        out.deadletters.append(DeadLetter(record, reason, detail))
        metrics.DEADLETTERS.labels(reason).inc()
        metrics.EVENTS_CONSUMED.labels(record.topic, "deadletter").inc()
        log.warning(
            "dead letter %s/%d@%d: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            reason,
            detail,
            extra={
                "event_id": event_id,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason,
            },
        )

    def stage(self, records: Sequence[Record], now_ms: int | None = None) -> StagedBatch:
        """Ingest a batch: its events as the stitch script takes them, and the dead
        letters of the records it refused. Pure work (metrics aside): the worker runs it
        while the previous batch's script runs in Redis."""
        ingest_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        out = Outputs()
        parsed: list[Staged] = []
        for record in records:
            if (event := self.parse(record, out)) is None:
                continue
            if (staged := self._staged(record, event, out)) is not None:
                parsed.append((record, staged))
        return StagedBatch(parsed, out.deadletters, ingest_ms)

    async def apply(self, batch: StagedBatch) -> Outputs:
        """The staged batch's one Redis call, and what to send for it. Outputs are made
        anew on each call, so a batch run again sends them once."""
        out = Outputs(deadletters=list(batch.deadletters))
        if batch.events:
            metrics.BATCH_EVENTS.observe(len(batch.events))
            started = time.perf_counter()
            await self._stitch(batch.events, batch.ingest_ms, out)
            metrics.STITCH_DURATION.observe(time.perf_counter() - started)
            metrics.LAST_EVENT.set(batch.ingest_ms / 1000)
        return out

    def _staged(self, record: Record, event: Event, out: Outputs) -> StitchEvent | None:
        try:
            return to_stitch_event(event, record)
        except Exception as exc:  # a value ingest let through but cannot be packed: a bug
            self._deadletter(out, record, "stitch_error", repr(exc), event.event_id)
            return None

    async def _stitch(self, parsed: Sequence[Staged], ingest_ms: int, out: Outputs) -> None:
        batch = [staged for _, staged in parsed]
        try:
            result = await until_redis_answers("stitch", lambda: self.store.stitch(batch))
        except ResponseError as exc:
            # A script error is a bug or data Redis cannot take: isolate the event that
            # causes it so the rest of the batch still goes through.
            if len(parsed) == 1:
                record, event = parsed[0]
                self._deadletter(out, record, "stitch_error", str(exc), event.event_id)
                return
            half = len(parsed) // 2
            await self._stitch(parsed[:half], ingest_ms, out)
            await self._stitch(parsed[half:], ingest_ms, out)
            return
        self._collect(parsed, result, ingest_ms, out)

    def _collect(
        self,
        parsed: Sequence[Staged],
        result: StitchResult,
        ingest_ms: int,
        out: Outputs,
    ) -> None:
        first_event_ms = min(e.timestamp_ms for _, e in parsed)
        consumed: Counter[tuple[str, str]] = Counter()  # counted per batch, not per event
        for (record, event), outcome in zip(parsed, result.outcomes, strict=True):
            if outcome.startswith("rejected:"):
                reason = outcome.removeprefix("rejected:")
                self._deadletter(out, record, reason, REJECT_REASONS[reason], event.event_id)
            else:
                consumed[record.topic, outcome] += 1
        for (topic, outcome), n in consumed.items():
            metrics.EVENTS_CONSUMED.labels(topic, outcome).inc(n)
        note = UpdateNote(first_event_ms, ingest_ms)
        for profile_id in result.dirty | result.ceased | _profiles_named(result.changes):
            out.note(profile_id, note)
        # One publication per profile and batch: the batch's events beyond its profiles
        # are updates folded into another's publication.
        if (folded := sum(consumed.values()) - len(out.updates)) > 0:
            metrics.UPDATES_COALESCED.inc(folded)
        out.changes.extend(result.changes)
        for size in result.graph_sizes:
            metrics.GRAPH_SIZE.observe(size)


def _profiles_named(changes: Sequence[dict[str, Any]]) -> set[str]:
    """Every profile id the graph changes name.

    A redelivered event (a worker died after Redis applied its batch but before the
    batch's outputs were sent) comes back as "duplicate" with its recorded changes but
    without the ids its first delivery ceased: republishing every id its changes name
    (merged-away ids render as tombstones) keeps a lost tombstone from leaving a dead
    profile live on cdp.profiles forever. For a first delivery they are all in
    dirty | ceased already.
    """
    named: set[str] = set()
    for change in changes:
        for field in ("profile_id", "from", "into"):
            value = change.get(field)
            if isinstance(value, str):
                named.add(value)
            elif isinstance(value, list | tuple):
                named.update(v for v in value if isinstance(v, str))
    return named
