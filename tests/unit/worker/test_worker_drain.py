"""The consumer's drain loop that replaces Faust's (one task per fetch), without Kafka.

It replaces a private method of faust-streaming and extends ``stop_flow``: the first
tests fail when the pinned upstream code changes, so whoever upgrades Faust re-reads it
against ours.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import faust
import pytest
from faust.transport.consumer import Consumer
from faust.types import TP, Message

from pipeline.worker import drain
from pipeline.worker.drain import LeanConsumer, use_lean_consumer

# sha256 of faust-streaming 0.15.3's faust.transport.consumer.Consumer._drain_messages.
UPSTREAM_DRAIN_SHA256 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
# And of its Consumer.wait_empty, which LeanConsumer.wait_empty bounds.
UPSTREAM_WAIT_EMPTY_SHA256 = "e4662fe24f094819add590b2d75f233840e77823b432aea6504539768572102f"
# And of its Consumer.stop_flow, which LeanConsumer.stop_flow extends.
UPSTREAM_STOP_FLOW_SHA256 = "cf7e875a2b0d40e8e45df69720709199c47b710c983cf79371cce3a58888a6ac"
TOPIC = TP("cdp.events.web", 0)


def test_the_replaced_upstream_drain_loop_is_the_one_it_was_written_against() -> None:
    assert faust.__version__ == "0.15.3"
    source = inspect.getsource(Consumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest() == UPSTREAM_DRAIN_SHA256, (
        "faust's Consumer._drain_messages changed: compare it with "
        "pipeline/worker/drain.py, then update the hash"
    )


def test_the_bounded_wait_empty_is_upstreams_it_was_written_against() -> None:
    source = inspect.getsource(Consumer.wait_empty)
    assert hashlib.sha256(source.encode()).hexdigest() == UPSTREAM_WAIT_EMPTY_SHA256, (
        "faust's Consumer.wait_empty changed: compare it with LeanConsumer.wait_empty in "
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


def test_stop_flow_is_upstreams_and_the_one_place_that_suspends_the_flow() -> None:
    """The drain races nothing: ``stop_flow`` cancels the delivery instead, which holds
    only while nothing else in Faust sets ``suspend_flow``."""
    source = inspect.getsource(Consumer.stop_flow)
    assert hashlib.sha256(source.encode()).hexdigest() == UPSTREAM_STOP_FLOW_SHA256, (
        "faust's Consumer.stop_flow changed: compare it with LeanConsumer.stop_flow in "
        "pipeline/worker/drain.py, then update the hash"
    )
    package = Path(inspect.getfile(faust)).parent
    setters = [
        path.name
        for path in package.rglob("*.py")
        for _ in range(path.read_text().count("suspend_flow.set("))
    ]
    assert setters == ["consumer.py"]


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
            c.stop_flow()  # a rebalance starts while this message waits for room
            await blocked.wait()
        delivered.append(m.offset)

    c.callback = callback
    await c._drain_messages(fetcher(c))  # type: ignore[arg-type]
    assert delivered == [0, 1]
    assert c._read_offset[TOPIC] == 4  # as upstream: kept-back messages count as read


async def test_a_flow_suspended_before_the_fetch_delivers_none_of_it() -> None:
    delivered: list[int] = []
    c = consumer([(TOPIC, message(o)) for o in range(3)], delivered)
    c._commit_every = None
    c.stop_flow()
    await c._drain_messages(fetcher(c))  # type: ignore[arg-type]
    assert delivered == []
    assert c._read_offset[TOPIC] == 2


async def test_a_stopping_fetcher_cancels_the_delivery_with_the_drain() -> None:
    delivered: list[int] = []
    c = consumer([(TOPIC, message(o)) for o in range(3)], delivered)
    c._commit_every = None
    entered, blocked = asyncio.Event(), asyncio.Event()

    async def callback(m: Message) -> None:
        entered.set()
        await blocked.wait()

    c.callback = callback
    drain = asyncio.ensure_future(c._drain_messages(fetcher(c)))  # type: ignore[arg-type]
    await entered.wait()
    delivery = c._delivery
    drain.cancel()
    with pytest.raises(asyncio.CancelledError):
        await drain
    assert delivery is not None and delivery.cancelled() and c._delivery is None


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


async def ended(c: LeanConsumer) -> bool:
    """Whether ``wait_empty`` returned within 5 s. Not ``wait_for``: upstream's wait
    swallows the cancellation, so a wait that never ends would hang the test. One that
    did not end is ended by emptying what it waits for."""
    waiting = asyncio.ensure_future(c.wait_empty())
    done, _ = await asyncio.wait({waiting}, timeout=5)
    if not done:
        c._unacked_messages.clear()
        await waiting
    return bool(done)


async def test_wait_empty_gives_up_on_a_message_never_acknowledged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch waiting out a Redis outage is never acknowledged: the stop (or rebalance)
    goes on after the grace time, with what was acknowledged committed."""
    monkeypatch.setattr(drain, "SHUTDOWN_GRACE_S", 0.2)
    c = consumer([], [])
    stuck = message(7)
    c._unacked_messages.add(stuck)
    commits: list[str] = []

    async def commit(*args: object, **kwargs: object) -> bool:
        commits.append("commit")
        return True

    c.commit = commit  # type: ignore[method-assign]
    assert await ended(c)
    assert stuck in c._unacked_messages  # left to be consumed again, not acknowledged
    assert commits and commits[-1] == "commit"


async def test_wait_empty_ends_once_the_message_is_acknowledged() -> None:
    c = consumer([], [])
    taken = message(8)
    c._unacked_messages.add(taken)

    async def commit(*args: object, **kwargs: object) -> bool:
        return True

    async def acknowledge() -> None:
        await asyncio.sleep(0.05)
        taken.acked = True
        if c._waiting_for_ack is not None:
            c._waiting_for_ack.set_result(None)

    c.commit = commit  # type: ignore[method-assign]
    acker = asyncio.ensure_future(acknowledge())
    assert await ended(c)
    await acker
    assert not c._unacked_messages
