"""Acknowledgements in order, only after delivery, with the next batch's work overlapping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any

import pytest

from pipeline import metrics
from pipeline.worker.acks import InOrderAcks


class FakeEvent:
    def __init__(self, stream: FakeStream, name: str) -> None:
        self.stream, self.name = stream, name

    def ack(self) -> bool:
        self.stream.acked.append(self.name)
        return True


class FakeStream:
    def __init__(self) -> None:
        self.acked: list[str] = []
        self.batches: list[list[str]] = []  # as told to the callback, after their acks

    def events(self, *names: str) -> Any:
        return [FakeEvent(self, name) for name in names]

    def told(self, batch: Sequence[Any]) -> None:
        self.batches.append([event.name for event in batch])


def acks() -> tuple[InOrderAcks, FakeStream]:
    stream = FakeStream()
    return InOrderAcks("test", stream.told), stream


async def work(log: list[str], name: str, delivered: asyncio.Event) -> Awaitable[None]:
    log.append(f"work {name}")
    return delivered.wait()


async def test_the_next_batch_works_while_the_previous_is_delivered_and_acks_keep_order() -> None:
    in_order, stream = acks()
    log: list[str] = []
    first, second = asyncio.Event(), asyncio.Event()
    await in_order.run(stream.events("a1", "a2"), lambda: work(log, "a", first))
    assert stream.acked == []  # not delivered yet
    second_run = asyncio.ensure_future(
        in_order.run(stream.events("b1"), lambda: work(log, "b", second))
    )
    while len(log) < 2:  # b's effects are applied while a's outputs are in flight
        await asyncio.sleep(0)
    second.set()  # b delivered before a: still acknowledged after a
    for _ in range(5):
        await asyncio.sleep(0)
    assert stream.acked == []
    first.set()
    await second_run
    await in_order.finish()
    assert stream.acked == ["a1", "a2", "b1"]
    assert stream.batches == [["a1", "a2"], ["b1"]]


async def test_a_batch_whose_outputs_fail_is_never_acknowledged() -> None:
    in_order, stream = acks()

    async def failing() -> Awaitable[None]:
        async def broker_refused() -> None:
            raise RuntimeError("delivery failed")

        return broker_refused()

    await in_order.run(stream.events("a"), failing)
    with pytest.raises(RuntimeError):
        await in_order.run(stream.events("b"), failing)  # the previous failure surfaces here
    await in_order.finish()
    assert stream.acked == []


async def test_shutdown_finishes_the_batch_in_hand_and_acknowledges_it() -> None:
    in_order, stream = acks()
    started, go_on = asyncio.Event(), asyncio.Event()

    async def slow() -> Awaitable[None]:
        started.set()
        await go_on.wait()
        return asyncio.sleep(0)

    agent = asyncio.ensure_future(in_order.run(stream.events("a"), slow))
    await started.wait()
    agent.cancel()  # the worker stops while the batch's effects are being applied
    await asyncio.sleep(0)
    go_on.set()
    with pytest.raises(asyncio.CancelledError):
        await agent
    await in_order.finish()
    assert stream.acked == ["a"]


async def test_a_batch_whose_work_fails_runs_again_and_is_acknowledged_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unexpected error in a batch's work (seen: a Redis transport closed under a
    write) must not crash the agent, which Faust would restart past the batch: the batch
    runs again and is acknowledged once it went through."""
    monkeypatch.setattr("pipeline.worker.acks.RETRY_FIRST_S", 0.001)
    in_order, stream = acks()
    attempts: list[int] = []
    before = metrics.BATCH_RETRIES.labels("test")._value.get()

    async def flaky() -> Awaitable[None]:
        attempts.append(len(attempts))
        if len(attempts) < 3:
            raise RuntimeError("the handler is closed")
        return asyncio.sleep(0)

    await in_order.run(stream.events("a"), flaky)
    await in_order.finish()
    assert attempts == [0, 1, 2]
    assert stream.acked == ["a"]
    assert metrics.BATCH_RETRIES.labels("test")._value.get() == before + 2
