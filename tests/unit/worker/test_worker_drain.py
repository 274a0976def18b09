"""The consumer's drain loop that replaces Faust's (one wait_first per fetch), without Kafka.

It replaces a private method of faust-streaming: the first test fails when the pinned
upstream function changes, so whoever upgrades Faust re-reads it against ours.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import AsyncIterator
from types import SimpleNamespace

import faust
import pytest
from faust.transport.consumer import Consumer
from faust.types import TP, Message

from pipeline.worker.drain import LeanConsumer, use_lean_consumer

# sha256 of faust-streaming 0.15.3's faust.transport.consumer.Consumer._drain_messages.
UPSTREAM_DRAIN_SHA256 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
TOPIC = TP("cdp.events.web", 0)


def test_the_replaced_upstream_drain_loop_is_the_one_it_was_written_against() -> None:
    assert faust.__version__ == "0.15.3"
    source = inspect.getsource(Consumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest() == UPSTREAM_DRAIN_SHA256, (
        "faust's Consumer._drain_messages changed: compare it with "
        "pipeline/worker/drain.py, then update the hash"
    )


def message(offset: int) -> Message:
    return Message(TOPIC.topic, TOPIC.partition, offset, 0.0, 0, [], b"k", b"v", None)


def consumer(fetched: list[tuple[TP, Message]], delivered: list[int]) -> LeanConsumer:
    """A consumer whose single fetch returns ``fetched`` and whose conductor records offsets."""
    app = faust.App("drain-test", broker="kafka://127.0.0.1:1")
    use_lean_consumer(app)
    c = app.consumer
    assert isinstance(c, LeanConsumer)

    async def getmany(timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        for pair in fetched:
            yield pair
        c.fetcher_stopped.set()  # one fetch, then the loop ends

    async def callback(m: Message) -> None:
        delivered.append(m.offset)

    c.getmany = getmany  # type: ignore[method-assign]
    c.callback = callback
    c.fetcher_stopped = asyncio.Event()  # type: ignore[attr-defined]
    return c


def fetcher(c: LeanConsumer) -> SimpleNamespace:
    return SimpleNamespace(_stopped=c.fetcher_stopped)  # type: ignore[attr-defined]


async def test_every_new_message_of_a_fetch_is_delivered_in_order_once() -> None:
    delivered: list[int] = []
    c = consumer([(TOPIC, message(o)) for o in (4, 5, 6, 250)], delivered)
    c._read_offset[TOPIC] = 5  # 4 was read already; 5 is redelivered, as upstream does
    c._commit_every = None
    await c._drain_messages(fetcher(c))  # type: ignore[arg-type]
    assert delivered == [5, 6, 250]
    assert c._read_offset[TOPIC] == 250


async def test_a_suspended_flow_cuts_the_fetch_short_and_advances_read_offsets() -> None:
    delivered: list[int] = []
    c = consumer([(TOPIC, message(o)) for o in range(5)], delivered)
    c._commit_every = None
    blocked = asyncio.Event()

    async def callback(m: Message) -> None:
        if m.offset == 2:
            c.suspend_flow.set()  # a rebalance starts while this message waits for room
            await blocked.wait()
        delivered.append(m.offset)

    c.callback = callback
    await c._drain_messages(fetcher(c))  # type: ignore[arg-type]
    assert delivered == [0, 1]
    assert c._read_offset[TOPIC] == 4  # as upstream: kept-back messages count as read


@pytest.mark.parametrize("commit_every", [2])
async def test_commits_every_n_acknowledged_messages_as_upstream(commit_every: int) -> None:
    delivered: list[int] = []
    c = consumer([(TOPIC, message(o)) for o in range(3)], delivered)
    c._commit_every = commit_every
    c._n_acked = commit_every
    commits: list[int] = []

    async def commit() -> bool:
        commits.append(len(delivered))
        return True

    c.commit = commit  # type: ignore[method-assign]
    await c._drain_messages(fetcher(c))  # type: ignore[arg-type]
    assert commits == [0] and delivered == [0, 1, 2] and c._n_acked == 0
