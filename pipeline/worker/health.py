"""Readiness, dependency probes and consumer lag. The probe writes the state; /readyz and
the metrics only read it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any
from urllib.parse import urlsplit

import faust
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError
from faust.types import TP, EventT

from pipeline import metrics
from pipeline.identity.commands import GraphStore
from pipeline.identity.replicas import describe, replicas
from pipeline.settings import Settings, Topics
from pipeline.topics import admin_client

log = logging.getLogger(__name__)
# A dependency that takes longer than this to answer a probe is reported down: a broker
# or Redis that accepts connections but does not answer (stopped, overloaded) otherwise
# stayed "ready" for the whole client timeout (CDP_KAFKA_REQUEST_TIMEOUT_S, 30 s).
PROBE_TIMEOUT_S = 3.0
WAITING_FOR_PARTITIONS = (
    "the consumer group has not assigned this worker its partitions yet "
    "(starting, or a rebalance is under way)"
)


def redis_address(url: str) -> str:
    """Where CDP_REDIS_URL points, for people: host:port/db, or the seeds of a cluster,
    or a socket's path; never its user name or password."""
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] + parts.path if parts.netloc else parts.path


def unreachable(what: str, where: str, exc: BaseException, timeout_s: float | None = None) -> str:
    """One line for /readyz and start-up errors: the client's own first line (no
    traceback), or that the dependency did not answer within ``timeout_s`` (the probe's
    bound by default)."""
    if isinstance(exc, TimeoutError):
        bound = PROBE_TIMEOUT_S if timeout_s is None else timeout_s
        return f"{what} at {where} did not answer within {bound:g} s"
    if isinstance(exc, KafkaConnectionError | NodeNotReadyError):  # their text is internals
        return f"cannot reach {what} at {where}: no broker accepts a connection"
    said = str(exc).strip().partition("\n")[0][:200] or type(exc).__name__
    return f"cannot reach {what} at {where}: {said}"


class Health:
    def __init__(self, app: faust.App, store: GraphStore, settings: Settings) -> None:
        self.app = app
        self.store = store
        self.settings = settings
        self.state = {"kafka": False, "redis": False, "partitions_assigned": False}
        if settings.redis_min_replicas:
            self.state["redis_replicas"] = False
        # Why a check failed, where a sentence says more than its name (/readyz).
        self._why: dict[str, str] = {"partitions_assigned": WAITING_FOR_PARTITIONS}
        self._where = {
            "kafka": settings.kafka_bootstrap,
            "redis": redis_address(settings.redis_url),
        }
        self._admin: AIOKafkaAdminClient | None = None
        # Kafka answers a metadata request for one topic it holds (created at start): the
        # whole cluster's metadata cost the event loop 12 ms every probe at 228 topics.
        self._probe_topics = [Topics(settings.topic_prefix).profile_updates]
        # Next offset to process per partition, from the batches the agents completed.
        self._next: dict[TP, int] = {}
        # mode's signal stubs do not accept bound async methods; the call is as documented.
        app.on_rebalance_complete.connect(self._on_rebalanced)  # type: ignore[arg-type]
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]

    async def _on_rebalanced(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self.state["partitions_assigned"] = True
        self._publish_ready()

    async def _on_revoked(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self.state["partitions_assigned"] = False
        self._publish_ready()

    def processed(self, events: Sequence[EventT]) -> None:
        """Called with each batch once its effects landed: where the lag counts from."""
        for event in events:
            m = event.message
            self._next[m.tp] = m.offset + 1

    def checks(self) -> dict[str, bool]:
        return dict(self.state)

    def why(self) -> dict[str, str]:
        return {name: said for name, said in self._why.items() if not self.state[name]}

    def _publish_ready(self) -> None:
        metrics.READY.set(1 if all(self.state.values()) else 0)

    async def probe(self) -> None:
        """Runs every few seconds: the answers feed /readyz and the metrics."""
        await self._check("redis", self.store.redis.ping())
        await self._check("kafka", self._describe())
        if "redis_replicas" in self.state:
            await self._replicas()
        metrics.UP.labels("redis").set(int(self.state["redis"]))
        metrics.UP.labels("kafka").set(int(self.state["kafka"]))
        self._publish_ready()
        self._lag()

    async def _check(self, name: str, answer: Awaitable[Any]) -> None:
        try:
            await asyncio.wait_for(answer, PROBE_TIMEOUT_S)
            self.state[name] = True
        except Exception as exc:
            self.state[name] = False
            self._why[name] = unreachable(name.capitalize(), self._where[name], exc)
            log.warning("%s unreachable: %r", name, exc)

    async def _describe(self) -> None:
        """One owned topic's metadata, through an admin client made once Kafka answers
        (one whose start failed is closed: the next probe makes another)."""
        if self._admin is None:
            admin = admin_client(self.settings)
            try:
                await admin.start()
            except BaseException:  # the probe's timeout cancels a start that hangs
                await admin.close()
                raise
            self._admin = admin
        await self._admin.describe_topics(self._probe_topics)

    async def _replicas(self) -> None:
        """Enough replicas for CDP_REDIS_MIN_REPLICAS: with fewer, every write waits for
        them and is retried. Not a reason to stop: a replica may be restarting."""
        minimum = self.settings.redis_min_replicas
        try:
            now = await asyncio.wait_for(replicas(self.store.redis), PROBE_TIMEOUT_S)
        except Exception as exc:
            self.state["redis_replicas"] = False
            self._why["redis_replicas"] = f"cannot count the replicas of Redis ({exc!r})"
            return
        self.state["redis_replicas"] = now.graph >= minimum
        self._why["redis_replicas"] = describe(now, minimum)

    def _lag(self) -> None:
        consumer: Any = self.app.consumer
        try:
            assignment = consumer.assignment()
        except Exception:
            return
        for tp in assignment:
            highwater = consumer.highwater(tp)
            # A partition counts from its first completed batch in this process.
            position = self._next.get(tp)
            if highwater is None or position is None:
                continue
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(
                max(0, highwater - position)
            )
