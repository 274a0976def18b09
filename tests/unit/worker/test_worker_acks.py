"""Acknowledgements in order, only after delivery, with the next batch's work overlapping;
the next batch staged while the previous one's work runs (Overlap)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any

import pytest

from pipeline import metrics
from pipeline.worker.acks import InOrderAcks
from pipeline.worker.overlap import Overlap


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


class Refusing:
    """A batch's work whose delivery the broker refuses the first ``refusals`` times
    (seen: `LeaderNotAvailableError` once a broker restart outlasted the producer's
    retries); ``runs`` counts the runs of the work."""

    def __init__(self, refusals: int) -> None:
        self.refusals, self.runs = refusals, 0

    async def __call__(self) -> Awaitable[None]:
        self.runs += 1
        refused = self.refusals > 0
        self.refusals -= 1

        async def delivery() -> None:
            if refused:
                raise RuntimeError("delivery failed")

        return delivery()


async def test_a_batch_whose_outputs_fail_runs_again_until_delivered_then_is_acknowledged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by the broker restart fault test under load: a refused delivery crashed the
    agent, Faust restarted it past the batch, and the batch, never acknowledged, held
    every later commit of its partitions. Its work runs again (its events are
    duplicates by then) until its outputs are delivered."""
    monkeypatch.setattr("pipeline.worker.acks.RETRY_FIRST_S", 0.001)
    in_order, stream = acks()
    before = metrics.BATCH_RETRIES.labels("test")._value.get()
    a, b = Refusing(2), Refusing(0)
    await in_order.run(stream.events("a"), a)
    await in_order.run(stream.events("b"), b)  # waits for a's acknowledgement
    assert stream.acked[:1] == ["a"]
    await in_order.finish()
    assert (a.runs, b.runs) == (3, 1)
    assert stream.acked == ["a", "b"]
    assert metrics.BATCH_RETRIES.labels("test")._value.get() == before + 2


async def test_a_batch_whose_outputs_always_fail_is_never_acknowledged_nor_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pipeline.worker.acks.RETRY_FIRST_S", 0.001)
    monkeypatch.setattr("pipeline.worker.acks.RETRY_MAX_S", 0.001)
    in_order, stream = acks()
    a = Refusing(10**9)
    await in_order.run(stream.events("a"), a)
    after = asyncio.ensure_future(in_order.run(stream.events("b"), Refusing(0)))
    while a.runs < 5:
        await asyncio.sleep(0.001)
    assert not after.done() and stream.acked == []  # the agent waits; it does not crash
    after.cancel()
    if in_order.pending is not None:
        in_order.pending.cancel()
    await asyncio.gather(after, in_order.pending, return_exceptions=True)
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


class Applying:
    """A batch's work that applies its effects when the test says so (a Redis call in
    flight), failing the first ``failures`` times; ``log`` holds what happened in order."""

    def __init__(self, log: list[str], name: str, failures: int = 0) -> None:
        self.log, self.name, self.failures = log, name, failures
        self.started, self.answer = asyncio.Event(), asyncio.Event()

    async def __call__(self) -> Awaitable[None]:
        self.log.append(f"start {self.name}")
        self.started.set()
        await self.answer.wait()
        if self.failures:
            self.failures -= 1
            self.log.append(f"failed {self.name}")
            raise RuntimeError("the handler is closed")
        self.log.append(f"applied {self.name}")
        return asyncio.sleep(0)


async def settled(stream: FakeStream, acked: int) -> None:
    """Until the stream has ``acked`` events acknowledged (finish() drops a batch whose
    work has not started: a stopping worker leaves it to be consumed again)."""
    while len(stream.acked) < acked:
        await asyncio.sleep(0.001)


async def test_the_next_batch_is_staged_while_the_previous_runs_and_applied_after_it() -> None:
    in_order, stream = acks()
    overlap, log = Overlap(in_order), []
    a, b = Applying(log, "a"), Applying(log, "b")
    await overlap.submit(stream.events("a1"), a)  # returns with a's work in flight
    await a.started.wait()
    log.append("stage b")  # the agent ingests the next batch meanwhile
    submitted = asyncio.ensure_future(overlap.submit(stream.events("b1"), b))
    b.answer.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert log == ["start a", "stage b"]  # b waits for a's effects before its own start
    a.answer.set()
    await submitted
    await settled(stream, 2)
    await overlap.finish()
    assert log == ["start a", "stage b", "applied a", "start b", "applied b"]
    assert stream.acked == ["a1", "b1"]


async def test_a_failing_batch_runs_again_before_the_next_one_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis applies batches in the order they were consumed: a batch whose work fails
    (and runs again) is never overtaken by the batch staged behind it."""
    monkeypatch.setattr("pipeline.worker.acks.RETRY_FIRST_S", 0.001)
    in_order, stream = acks()
    overlap, log = Overlap(in_order), []
    a, b = Applying(log, "a", failures=2), Applying(log, "b")
    a.answer.set()
    b.answer.set()
    await overlap.submit(stream.events("a1"), a)
    await overlap.submit(stream.events("b1"), b)
    await settled(stream, 2)
    await overlap.finish()
    failed_twice = ["start a", "failed a"] * 2
    assert log == [*failed_twice, "start a", "applied a", "start b", "applied b"]
    assert stream.acked == ["a1", "b1"]


async def test_shutdown_finishes_the_running_batch_and_drops_the_staged_one() -> None:
    in_order, stream = acks()
    overlap, log = Overlap(in_order), []
    a, b = Applying(log, "a"), Applying(log, "b")

    async def agent() -> None:
        try:
            await overlap.submit(stream.events("a1"), a)
            await overlap.submit(stream.events("b1"), b)  # waits for a
        finally:
            await overlap.finish()

    running = asyncio.ensure_future(agent())
    await a.started.wait()
    running.cancel()  # the worker stops with a's script in flight and b staged
    await asyncio.sleep(0)
    a.answer.set()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert log == ["start a", "applied a"]  # a finished, b never started
    assert stream.acked == ["a1"]  # b is consumed again after the restart


async def test_a_refused_delivery_is_sent_again_before_the_next_batch_s_work_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pipeline.worker.acks.RETRY_FIRST_S", 0.001)
    in_order, stream = acks()
    overlap, log = Overlap(in_order), []
    a, b, c = Refusing(1), Refusing(0), Applying(log, "c")
    c.answer.set()
    await overlap.submit(stream.events("a1"), a)
    await overlap.submit(stream.events("b1"), b)  # a's delivery fails behind b's work
    await overlap.submit(stream.events("c1"), c)  # once b ran, which waited for a's ack
    assert stream.acked[:1] == ["a1"] and a.runs == 2
    await settled(stream, 3)
    await overlap.finish()
    assert log == ["start c", "applied c"]
    assert stream.acked == ["a1", "b1", "c1"]
