"""``cdp worker``: prepare the topics, then run the Faust worker until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import mode.loop
from faust.worker import Worker

from pipeline.identity import config as identity_config
from pipeline.identity.commands import GraphStore
from pipeline.identity.connect import RedisUrlError, connect
from pipeline.identity.migrate import holds_old_layout
from pipeline.identity.replicas import Replicas, describe, replicas
from pipeline.logs import logging_config
from pipeline.settings import Settings, Topics
from pipeline.topics import (
    TopicConfigError,
    admin_client,
    deadletter_bytes,
    ensure_topics,
    event_topics,
)
from pipeline.worker.app import create_app
from pipeline.worker.health import redis_address, unreachable

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 10.0  # the first PING at start-up; a Redis loading its data answers later


class StartupError(RuntimeError):
    """The worker cannot start; the message says what to do."""


class Prepared(NamedTuple):
    channel_topics: list[str]  # the ones that exist now
    deadletter_bytes: int


async def prepare(settings: Settings) -> Prepared:
    """Create the owned topics; say what the worker needs to know about the topics."""
    admin = admin_client(settings)
    timeout = settings.kafka_request_timeout_s
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except Exception as exc:
        protocol = settings.kafka_security_protocol
        secured = (
            f" If it runs, check that its listener there takes CDP_KAFKA_SECURITY_PROTOCOL="
            f"{protocol} with these credentials and CA."
            if protocol != "PLAINTEXT"
            else ""
        )
        raise StartupError(
            f"{unreachable('Kafka', settings.kafka_bootstrap, exc, timeout)}. Start it with "
            f"`cdp stack up` or point CDP_KAFKA_BOOTSTRAP at your brokers.{secured}"
        ) from exc
    try:
        await ensure_topics(settings, admin)
        topics = Topics(settings.topic_prefix)
        return Prepared(await event_topics(admin, topics), await deadletter_bytes(admin, topics))
    except TopicConfigError as exc:
        raise StartupError(str(exc)) from exc
    finally:
        await admin.close()


async def check_redis(url: str, min_replicas: int = 0) -> Replicas | None:
    """Refuse a Redis the worker cannot use; with CDP_REDIS_MIN_REPLICAS, say how many
    replicas it has now (fewer is no reason to refuse: a replica may be restarting)."""
    try:
        client = connect(url)
    except RedisUrlError as exc:
        raise StartupError(str(exc)) from exc
    try:
        await asyncio.wait_for(client.ping(), REDIS_TIMEOUT_S)
        old = await holds_old_layout(client)
        now = await replicas(client) if min_replicas else None
    except Exception as exc:
        raise StartupError(
            f"{unreachable('Redis', redis_address(url), exc, REDIS_TIMEOUT_S)}. Start it with "
            "`cdp stack up` or point CDP_REDIS_URL at your Redis."
        ) from exc
    finally:
        await client.aclose()
    if old:
        raise StartupError(
            f"Redis at {redis_address(url)} holds the identity graph in the key layout of an "
            "earlier version (cdp:<name>, today {cdp}:<name>): stop every worker and run "
            "`cdp migrate-keys` once, then start them again."
        )
    return now


def check_http(settings: Settings) -> None:
    """Bind the API's addresses once, as asyncio's create_server will, and let them go:
    Faust binds them only after the worker started, and a port in use or a foreign
    address then ended in a traceback."""
    host, port = settings.http_host, settings.http_port
    try:
        for family, kind, proto, _, address in socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
    except OSError as exc:
        raise StartupError(
            f"cannot serve the HTTP API on {host}:{port} ({exc.strerror or exc}): stop what "
            "listens there, or set CDP_HTTP_PORT to a free port and CDP_HTTP_HOST to an "
            "address of this machine."
        ) from None


# Python's default (700, 10, 10) collects the youngest objects every 700 net allocations,
# and a batch's events and documents live longer than that: most were promoted to the
# oldest generation, and its full collections followed. The collector took 33-58 us of a
# draining worker's CPU per event; with these 10-18. A garbage cycle waits longer.
GC_THRESHOLDS = (5000, 50, 10)

# A thread that wakes (channel discovery's listing done) while the event loop runs Python
# waits up to this long for the interpreter. Set when Faust ran aiokafka's consumer in a
# thread of its own (pipeline/worker/onloop.py now runs it on the loop): Python's default
# of 5 ms put 2.6-2.9 ms on average on each hand-over to that thread at 1,000 events/s,
# 1 ms 1.3-1.6 (the way back 4.3-4.6 -> 3.2-3.5 ms; load average 4.7-5.7).
GIL_SWITCH_INTERVAL_S = 0.001


def freeze_heap() -> None:
    """Move every object alive now out of the collector's reach. A worker starts with
    about 100,000 long-lived objects (Faust, aiokafka, the identity configuration) that
    every full collection walked again: 20 ms on an idle machine, 90-200 ms on a busy
    one, with the event loop stopped meanwhile, the largest
    single cause of the slowest event-to-profile times. What is allocated later is
    still collected. Then the young generations are made larger (GC_THRESHOLDS)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class LowPauseWorker(Worker):
    # What the checks before the start found to report (level, message), logged once
    # Faust has set logging up.
    startup_notes: tuple[tuple[int, str], ...] = ()

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        freeze_heap()  # once Faust's services, clients and agents exist
        for level, note in self.startup_notes:
            log.log(level, note)


def run(settings: Settings) -> None:
    # libuv's loop (Faust's supported alternative): the API's I/O costs less CPU on it.
    mode.loop.use("uvloop")
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    config = identity_config.load(settings.identity_config or None)
    check_http(settings)
    prepared = asyncio.run(prepare(settings))
    minimum = settings.redis_min_replicas
    now = asyncio.run(check_redis(settings.redis_url, minimum))
    store = GraphStore.for_settings(settings, config)
    # Faust makes a data directory (default `<app id>-data/` in the working directory)
    # even with tables in memory, as this worker keeps them: a temporary one, removed on
    # exit, leaves nothing where the worker was started.
    with tempfile.TemporaryDirectory(prefix=f"{settings.app_id}-faust-") as datadir:
        worker = LowPauseWorker(
            create_app(settings, config, store, *prepared, datadir=Path(datadir)).app,
            loglevel=settings.log_level,
            logging_config=logging_config(settings.log_format, settings.log_level),
            quiet=True,
            redirect_stdouts=False,
        )
        if now is not None:
            level = logging.INFO if now.graph >= minimum else logging.WARNING
            worker.startup_notes = ((level, describe(now, minimum)),)
        worker.execute_from_commandline()
