"""The Faust worker: thin agents around the plain stages (``cdp topology`` prints the
flow as wired here)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import Counter
from collections.abc import Awaitable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import faust
from faust.sensors.prometheus import FaustMetrics
from faust.types import EventT, StreamT, TopicT
from prometheus_client import CollectorRegistry, generate_latest

from pipeline import metrics
from pipeline.api.handlers import Api
from pipeline.api.routes import mount
from pipeline.identity.commands import GraphStore
from pipeline.identity.config import IdentityConfig
from pipeline.kafka import faust_broker, faust_credentials
from pipeline.notes import Note, read_notes
from pipeline.partition import cached_partitioner
from pipeline.publish.profiles import Publisher, PublishSettings
from pipeline.publish.sender import Sender
from pipeline.publish.verified import VerifiedPublisher
from pipeline.records import OUTPUT_MAX_RECORD_BYTES, Outputs, Record
from pipeline.retry import until_redis_answers
from pipeline.settings import Settings, Topics
from pipeline.stages.privacy import Receipt, handle_request
from pipeline.stages.stitch import StagedBatch, Stitcher
from pipeline.worker.acks import InOrderAcks
from pipeline.worker.batches import batches
from pipeline.worker.batchsend import BatchProducer
from pipeline.worker.discovery import ChannelDiscovery
from pipeline.worker.drain import use_lean_consumer
from pipeline.worker.health import Health
from pipeline.worker.lean import LeanMonitor, RawSchema
from pipeline.worker.overlap import Overlap
from pipeline.worker.topology import Flow

log = logging.getLogger(__name__)


def _record(event: EventT) -> Record:
    m = event.message
    headers = m.headers.items() if isinstance(m.headers, Mapping) else m.headers or ()
    return Record(m.topic, m.partition, m.offset, m.key, m.value, tuple(headers))


def _records(event: EventT) -> tuple[Record]:
    return (_record(event),)


# A batch of the publish agent (older workers' notes) may fold several stitch batches'
# notes into one document each: it holds at most this many times CDP_BATCH_SIZE notes
# (or one record, if more).
PUBLISH_BATCH_FACTOR = 4
# Room for a full batch's outputs in one producer batch per partition: with the default
# 16 KB the producer waits for a batch in flight before it takes the next record.
PRODUCER_BATCH_BYTES = 512 * 1024
# Offsets are committed by Faust's timer only (broker_commit_interval). Faust also commits
# every broker_commit_every acknowledged messages (10,000 by default) from inside the loop
# that hands fetched messages to the agents, which then waits for the commit's round trip
# to the broker: 4-8 ms at the median (up to 35-163 ms measured) without
# delivering anything, every few seconds at 1,000 events/s. The timer commits the same
# acknowledged offsets.
COMMIT_EVERY_MESSAGES = sys.maxsize


def _update_notes(event: EventT) -> list[Note]:
    """The notes of a record of the internal updates topic; anything else there is logged
    and skipped."""
    m = event.message
    try:
        return read_notes(m.key, m.value)
    except Exception:
        log.warning("skipping a malformed record on %s@%d:%d", m.topic, m.partition, m.offset)
        return []


class Wiring(NamedTuple):
    app: faust.App
    health: Health
    flows: list[Flow]


def create_app(
    settings: Settings,
    config: IdentityConfig,
    store: GraphStore,
    event_topic_names: Sequence[str],
    deadletter_bytes: int = OUTPUT_MAX_RECORD_BYTES,
    *,
    datadir: Path,
) -> Wiring:
    topics = Topics(settings.topic_prefix)
    app = faust.App(
        settings.app_id,
        broker=faust_broker(settings),
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=datadir,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        table_standby_replicas=0,
        # Faust's leader election topic (`<app id>-__assignor-__leader`) serves tables and
        # leader-only timers, which the worker has none of; it was the one topic the
        # worker read that CDP_TOPIC_PREFIX did not name.
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_request_timeout=settings.kafka_request_timeout_s,
        broker_request_timeout=settings.kafka_request_timeout_s,
        # A killed worker's partitions move to the others after this long.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        broker_commit_interval=1.0,
        broker_commit_every=COMMIT_EVERY_MESSAGES,
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        # A dead letter carries the original bytes (up to the broker's ceiling) and a
        # profile an accepted event's attributes: both may pass Faust's 1 MB default.
        # Fetch sizes stay: a fetch returns a record batch larger than them whole (KIP-74).
        producer_max_request_size=OUTPUT_MAX_RECORD_BYTES,
        producer_partitioner=cached_partitioner,
        web_enabled=True,
        web_bind=settings.http_host,
        web_host=settings.http_host,
        web_port=settings.http_port,
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
    )
    use_lean_consumer(app)
    faust_registry = CollectorRegistry()
    monitor = LeanMonitor(metrics=FaustMetrics.create(faust_registry, "faust"))
    app.monitor = monitor

    stitcher = Stitcher(store, config, topics, settings.max_event_bytes)
    publish_settings = PublishSettings(
        encoding=settings.output_encoding,
        policy=settings.merge_policy,
        precedence=settings.source_precedence,
        recent_limit=settings.recent_events,
    )
    sender = Sender(BatchProducer(app.producer), topics, settings.output_encoding, deadletter_bytes)
    verified = VerifiedPublisher(Publisher(store, config, publish_settings), sender, store)
    health = Health(app, store, settings)

    def raw_topic(*names: str, **options: Any) -> TopicT:
        return app.topic(*names, schema=RawSchema(), **options)

    # A config mapping of its own marks this topic's clones for topic discovery; Faust
    # only uses it when declaring internal topics, which this is not.
    events_topic = raw_topic(*event_topic_names, config={"cdp.role": "channel-events"})
    updates_topic = raw_topic(topics.profile_updates)
    privacy_topic = raw_topic(topics.privacy_requests)
    discovery = ChannelDiscovery(app, settings, events_topic)

    async def queue_emit(out: Outputs, receipt: Receipt | None = None) -> Awaitable[None]:
        """Hand what a stage produced to the producer; the result resolves once it is
        delivered, the profiles it changed published and verified, its dead letters
        tallied for the overview and the receipt sent."""
        delivered = await sender.queue_outputs(out)

        async def settled() -> None:
            # In turn, not gathered (two tasks less a batch): the producer delivers the
            # outputs meanwhile all the same.
            try:
                await verified.publish(out.updates)
            finally:
                await delivered
            if out.deadletters:  # sent first: a crash in between counts them again, as sent
                reasons = Counter(d.reason for d in out.deadletters)
                await until_redis_answers("tally", partial(store.count_deadletters, reasons))
            if receipt is not None:
                await sender.send_receipt(receipt["request_id"], receipt)

        return settled()

    async def emit(out: Outputs, receipt: Receipt | None = None) -> None:
        await (await queue_emit(out, receipt))

    async def stitch_batch(staged: StagedBatch) -> Awaitable[None]:
        # The batch's profiles are published as its completion, which the acks wait
        # for: the next batch's script does not wait for them.
        return await queue_emit(await stitcher.apply(staged))

    async def publish_batch(notes: Sequence[Note]) -> Awaitable[None]:
        return verified.publish(Publisher.coalesce(notes))

    @app.agent(events_topic, name="stitch")
    async def stitch(stream: StreamT) -> None:
        overlap = Overlap(InOrderAcks("stitch", health.processed))
        try:
            async for batch, records in batches(stream, settings.batch_size, _records):
                monitor.received(batch)
                # Ingested while the previous batch's script runs; stitched after it.
                await overlap.submit(batch, partial(stitch_batch, stitcher.stage(records)))
        finally:
            await overlap.finish()

    # Workers before direct publishing wrote update notes for this agent to publish: it
    # publishes those of a rolling upgrade's older workers (README, Upgrading).
    @app.agent(updates_topic, name="publish")
    async def publish(stream: StreamT) -> None:
        acks = InOrderAcks("publish", health.processed)
        try:
            limit = PUBLISH_BATCH_FACTOR * settings.batch_size
            async for batch, notes in batches(stream, limit, _update_notes):
                monitor.received(batch)
                await acks.run(batch, partial(publish_batch, notes))
        finally:
            await acks.finish()

    async def privacy_request(record: Record) -> Awaitable[None]:
        return await queue_emit(
            *await handle_request(store, config, record, settings.max_event_bytes)
        )

    @app.agent(privacy_topic, name="privacy")
    async def privacy(stream: StreamT) -> None:
        # Requests applied one after another, each acknowledged once its outputs and
        # receipt are delivered, and run again while they are refused (idempotent).
        acks = InOrderAcks("privacy", health.processed)
        try:
            async for event in stream.noack().events():  # type: ignore[attr-defined]
                await acks.run([event], partial(privacy_request, _record(event)))
        finally:
            await acks.finish()

    api = Api(store, config, publish_settings, emit=emit)
    mount(
        app,
        api,
        token=settings.api_token,
        ready=health.checks,
        why=health.why,
        exposition=lambda: generate_latest(metrics.REGISTRY) + generate_latest(faust_registry),
    )

    @app.timer(interval=2.0)
    async def watch() -> None:
        await asyncio.gather(health.probe(), return_exceptions=True)

    @app.timer(interval=2.0)
    async def discover() -> None:
        try:
            await discovery.discover()
        except Exception as exc:  # Kafka away: the probe reports it; try again later
            log.debug("channel discovery failed: %s", exc)

    flows = [
        Flow(
            stitch,
            "ingest -> identity (Redis graph) -> profile (assemble) -> publish, verify",
            sender.destinations("send_outputs", "queue_publications"),
        ),
        Flow(
            publish,
            "profile (assemble) -> publish, verify (notes of workers before direct publishing)",
            sender.destinations("queue_publications"),
        ),
        Flow(
            privacy,
            "identity (privacy delete) -> profile (assemble) -> publish, verify",
            sender.destinations("send_outputs", "queue_publications", "send_receipt"),
        ),
    ]
    return Wiring(app, health, flows)
