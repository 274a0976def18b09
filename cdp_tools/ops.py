"""What the CLI needs from the stages, without a running worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from pipeline.api.handlers import Api, BadRequest
from pipeline.identity import config as identity_config
from pipeline.identity.commands import GraphStore
from pipeline.ingest import normalise_identity
from pipeline.kafka import client_kwargs
from pipeline.publish.encode import encode
from pipeline.publish.profiles import PublishSettings
from pipeline.publish.reader import read_to_end
from pipeline.settings import Settings, Topics

T = TypeVar("T")


def store_for(settings: Settings) -> GraphStore:
    return GraphStore(
        aioredis.from_url(settings.redis_url),
        identity_config.load(settings.identity_config or None),
        dedupe_ttl_s=settings.dedupe_ttl_s,
        recent_limit=settings.recent_events,
    )


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


async def release(settings: Settings, namespace: str, value: str) -> Any:
    async def use(store: GraphStore) -> Any:
        identity = normalise_identity(store.config, namespace, value)
        return await store.release(identity.key, f"cli-release-{int(time.time())}")

    return await with_store(settings, use)


async def privacy_request(
    settings: Settings, request: dict[str, Any], wait_s: float
) -> dict[str, Any] | None:
    """Produce ``request``; return its receipt once the pipeline wrote it (or None)."""
    topics = Topics(settings.topic_prefix)
    producer = AIOKafkaProducer(**client_kwargs(settings), acks="all")
    await producer.start()
    try:
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
