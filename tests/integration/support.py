"""Producing, waiting and reading back, as a user of the topics would."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from cdp_tools.produce import produce
from cdp_tools.quiesce import wait_caught_up
from pipeline.kafka import client_kwargs
from pipeline.publish.reader import OutputRecord, latest_by_key, read_to_end
from pipeline.records import BROKER_MAX_RECORD_BYTES
from pipeline.settings import Settings

T0 = int(time.time() * 1000) - 3600_000


def ident(namespace: str, value: str, primary: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"namespace": namespace, "id": value}
    if primary:
        entry["primary"] = True
    return entry


def envelope(
    *identities: dict[str, Any],
    at: int,
    kind: str = "experience",
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "timestamp": T0 + at * 1000,
        "kind": kind,
        "identities": list(identities),
        **extra,
    }


def send(
    settings: Settings, events: Iterable[tuple[str, dict[str, Any]]], encoding: str = "json"
) -> int:
    return asyncio.run(produce(settings, list(events), encoding=encoding))


def send_raw(
    settings: Settings,
    topic: str,
    values: Iterable[bytes],
    key: bytes = b"raw",
    headers: Sequence[tuple[str, bytes]] = (),
) -> list[tuple[int, int]]:
    """Send the values in order (one key: one partition), each with ``headers``; returns
    (partition, offset)s."""

    async def go() -> list[tuple[int, int]]:
        # Anything the broker takes, oversized events included.
        producer = AIOKafkaProducer(
            **client_kwargs(settings), max_request_size=BROKER_MAX_RECORD_BYTES
        )
        await producer.start()
        try:
            sent = [
                await producer.send_and_wait(topic, value, key=key, headers=list(headers))
                for value in values
            ]
        finally:
            await producer.stop()
        return [(m.partition, m.offset) for m in sent]

    return asyncio.run(go())


def settle(settings: Settings, timeout_s: float = 120) -> None:
    asyncio.run(wait_caught_up(settings, timeout_s))


def view(settings: Settings, topic: str) -> dict[str, Any]:
    return asyncio.run(latest_by_key(settings, topic))


def records(settings: Settings, topic: str, decoded: bool = True) -> list[OutputRecord]:
    async def collect() -> list[OutputRecord]:
        return [r async for r in read_to_end(settings, topic, decoded=decoded)]

    return asyncio.run(collect())


def identity_set(document: dict[str, Any]) -> set[str]:
    return {f"{i['namespace']}:{i['id']}" for i in document["identities"]}


def live(profiles: dict[str, Any]) -> dict[str, Any]:
    return {pid: doc for pid, doc in profiles.items() if doc is not None}


def by_identity(profiles: dict[str, Any], key: str) -> dict[str, Any]:
    found = [d for d in live(profiles).values() if key in identity_set(d)]
    assert len(found) == 1, f"{key} is in {len(found)} profiles"
    return found[0]


def reasons(settings: Settings, topic: str) -> Counter[str]:
    dead = records(settings, topic, decoded=False)
    return Counter(r.headers["cdp-reason"].decode() for r in dead)
