"""What the CLI needs from the stages, without a running worker."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer

from pipeline.api.handlers import Api, BadRequest
from pipeline.identity import config as identity_config
from pipeline.identity.commands import GraphStore
from pipeline.kafka import client_kwargs
from pipeline.publish.encode import encode
from pipeline.publish.profiles import PublishSettings
from pipeline.publish.reader import read_to_end
from pipeline.settings import Settings, Topics

T = TypeVar("T")


def store_for(settings: Settings) -> GraphStore:
    return GraphStore.for_settings(settings, identity_config.load(settings.identity_config or None))


async def with_store(settings: Settings, use: Callable[[GraphStore], Awaitable[T]]) -> T:
    store = store_for(settings)
    try:
        return await use(store)
    finally:
        await store.redis.aclose()


def api_call(settings: Settings, method: str, *args: Any) -> tuple[int, dict[str, Any]]:
    """Answer as the HTTP API would, straight from Redis."""

    async def call(store: GraphStore) -> tuple[int, dict[str, Any]]:
        api = Api(
            store,
            store.config,
            PublishSettings(
                encoding=settings.output_encoding,
                policy=settings.merge_policy,
                precedence=settings.source_precedence,
                recent_limit=settings.recent_events,
            ),
        )
        try:
            result: tuple[int, dict[str, Any]] = await getattr(api, method)(*args)
            return result
        except BadRequest as exc:
            return 400, {"error": str(exc)}

    return asyncio.run(with_store(settings, call))


class WorkerUnreachable(Exception):
    """No worker answers at CDP_HTTP_HOST:CDP_HTTP_PORT."""


def worker_call(
    settings: Settings, method: str, path: str, query: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """Ask a running worker's HTTP API: for changes that must leave through a worker (its
    graph-changes records and metrics), not straight from Redis."""
    host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::") else settings.http_host
    url = f"http://{host}:{settings.http_port}{path}?{urllib.parse.urlencode(query)}"
    request = urllib.request.Request(url, method=method)
    if settings.api_token:
        request.add_header("Authorization", f"Bearer {settings.api_token}")
    try:
        with urllib.request.urlopen(request, timeout=settings.kafka_request_timeout_s) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except OSError as exc:
        raise WorkerUnreachable(
            f"no worker answers at {url.split('?')[0]} ({exc}); start one (`cdp worker`) or "
            "point CDP_HTTP_HOST/CDP_HTTP_PORT at a running worker"
        ) from exc


async def privacy_request(
    settings: Settings, request: dict[str, Any], wait_s: float
) -> dict[str, Any] | None:
    """Produce ``request``; return its receipt once the pipeline wrote it (or None)."""
    topics = Topics(settings.topic_prefix)
    producer = AIOKafkaProducer(**client_kwargs(settings), acks="all")
    try:  # stopped even when it never started: else an 'Unclosed' warning follows the error
        await producer.start()
        await producer.send_and_wait(
            topics.privacy_requests, encode(request, "json"), key=request["request_id"].encode()
        )
    finally:
        await producer.stop()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        async for record in read_to_end(settings, topics.privacy_receipts):
            if record.key == request["request_id"]:
                receipt: dict[str, Any] = record.value
                return receipt
        await asyncio.sleep(0.5)
    return None
