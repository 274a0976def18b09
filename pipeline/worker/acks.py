"""Acknowledging an agent's batches in order while the next batch already runs.

A batch's work applies its effects (Redis) and hands its outputs to the producer; its
offsets are acknowledged only once the broker has those outputs and the batch before
it is acknowledged. Waiting for the broker no longer holds up the next batch's work:
one batch's delivery at most is in flight behind it. A crash before the acknowledgement
replays the batch, whose effects are idempotent.

A batch whose work fails unexpectedly (a bug, an error no stage waits out) is run again
after a pause, logged and counted, instead of crashing the agent: Faust would restart a
crashed agent past the batch, which then stays unacknowledged and holds every later
commit of its partitions. So is a batch whose outputs the producer failed to deliver (a
broker restart longer than its retries: `LeaderNotAvailableError`): its work runs again,
which finds its events applied (duplicates, changing nothing) and sends their outputs
again, until they are delivered; the batches after it wait for its acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faust.types import EventT

from pipeline import metrics

log = logging.getLogger(__name__)

# How long a stopping worker may spend finishing the batches it has already taken.
SHUTDOWN_GRACE_S = 10.0
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0  # pauses before a failed batch runs again
Work = Awaitable[Awaitable[Any]]  # effects applied, outputs queued -> outputs delivered


class InOrderAcks:
    def __init__(self, agent: str, acked: Callable[[Sequence[EventT]], None] | None = None) -> None:
        self.agent = agent
        self.acked = acked  # told of each batch once acknowledged
        self.pending: asyncio.Future[None] | None = None

    async def run(self, batch: Sequence[EventT], work: Callable[[], Work]) -> None:
        """Run a batch's work (again, after a pause, while it fails), then let the batch
        be acknowledged once delivered (its work run again while delivery fails)."""
        pause = RETRY_FIRST_S
        while True:
            try:
                delivered = await self._attempt(batch, work())
                break
            except Exception:
                pause = await self._paused(batch, "failed", pause)
        previous = self._chain(batch, self._until_delivered(batch, delivered, work))
        if previous is not None:
            await asyncio.shield(previous)

    async def _until_delivered(
        self, batch: Sequence[EventT], delivered: Awaitable[Any], work: Callable[[], Work]
    ) -> Any:
        pause = RETRY_FIRST_S
        while True:
            try:
                return await delivered
            except Exception:
                pause = await self._paused(batch, "was not delivered", pause)
                delivered = _again(work)

    async def _paused(self, batch: Sequence[EventT], what: str, pause: float) -> float:
        """Count and log a failed run, wait ``pause``; the pause before the next one."""
        metrics.BATCH_RETRIES.labels(self.agent).inc()
        log.exception(
            "%s: a batch of %d events %s; nothing of it is acknowledged, it runs again in %.1f s",
            self.agent,
            len(batch),
            what,
            pause,
        )
        await asyncio.sleep(pause)
        return min(pause * 2, RETRY_MAX_S)

    async def _attempt(self, batch: Sequence[EventT], work: Work) -> Awaitable[Any]:
        """One run of the work. On shutdown (cancellation) it is finished first, within
        a bounded time, so its offsets can be committed on the way out (``finish``)."""
        task = asyncio.ensure_future(work)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, SHUTDOWN_GRACE_S)
            if task.done() and not task.cancelled() and task.exception() is None:
                self._chain(batch, task.result())
            raise

    def _chain(self, batch: Sequence[EventT], delivered: Awaitable[Any]) -> Awaitable[None] | None:
        previous = self.pending
        self.pending = asyncio.ensure_future(self._ack_after(previous, delivered, batch))
        return previous

    async def _ack_after(
        self, previous: Awaitable[None] | None, delivered: Awaitable[Any], batch: Sequence[EventT]
    ) -> None:
        # The delivery is awaited first, so it is driven at once, not once the previous
        # batch is acknowledged: what runs on delivery (the latency metric of
        # publications) sees the delivery time. In this task, not one of its own: a task
        # and a gather less per batch. Both awaited whatever happens, so neither failure
        # goes unretrieved; the previous batch's, if any, is the one raised, as before.
        try:
            await delivered
        finally:
            if previous is not None:
                await previous
        # Event.ack, not Stream.ack: that also calls the monitor's two per-message hooks,
        # which do nothing here (LeanMonitor counts per batch).
        for event in batch:
            event.ack()
        if self.acked is not None:
            self.acked(batch)

    async def finish(self) -> None:
        """Wait, within the grace time, for the batches still being acknowledged."""
        if self.pending is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self.pending), SHUTDOWN_GRACE_S)


async def _again(work: Callable[[], Work]) -> Any:
    """The work once more and its delivery: an error of either is the delivery's."""
    return await (await work())
