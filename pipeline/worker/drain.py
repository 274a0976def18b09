"""Faust's consumer with a cheaper drain loop: one task per fetch, no race.

Faust 0.15.3's ``Consumer._drain_messages`` hands each fetched message to the
conductor through ``wait_first(callback(message), suspend_flow.wait())``: four tasks
(the callback, ``suspend_flow``, the service's stopped and crashed events) and an
``asyncio.wait`` per message, the largest single cost of a worker (50-75 us per message
on a 2-core machine). This loop delivers a whole fetch in one task and races nothing:
``stop_flow`` (the one place Faust suspends the flow, at a rebalance) cancels that task,
and the loop checks the flow before each message, so a suspension cuts the fetch short
as upstream's race did; stopping the fetcher cancels its task, and the delivery with it.
What a suspension cuts short is handled as upstream handles it: the read offsets of the
messages not delivered still advance (a rebalance seeks back to the committed offsets
anyway), and offsets are only committed for acknowledged messages, so nothing
undelivered is ever committed. At steady rates a fetch brings a few events, so the race
cost about as much as delivering them.

Its aiokafka consumer runs on the worker's event loop, not on a thread of Faust's
(pipeline/worker/onloop.py).

Its ``wait_empty`` is upstream's with a deadline (the shutdown grace time): upstream's
never ends while a batch waits out a Redis outage.

This replaces a private method and two public ones: faust-streaming is pinned
(pyproject.toml) and tests/unit/worker/test_worker_drain.py fails when any of the three
upstream functions changes.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence

from faust.transport.consumer import CONSUMER_FETCHING, CONSUMER_WAIT_EMPTY
from faust.transport.drivers import aiokafka as driver
from faust.types import TP, AppT, Message
from mode import Service, ServiceT

from pipeline.worker.acks import SHUTDOWN_GRACE_S
from pipeline.worker.onloop import LoopConsumerThread

YIELD_EVERY = 100  # messages delivered between two returns to the event loop, as upstream
Fetched = Sequence[tuple[TP, Message]]


class LeanConsumer(driver.Consumer):
    _delivery: asyncio.Future[None] | None = None  # the fetch being delivered

    def _new_consumer_thread(self) -> LoopConsumerThread:
        return LoopConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def stop_flow(self) -> None:
        """Upstream's, and the fetch being delivered is cut short at once: a message
        waiting for room in an agent's buffer is not delivered, as when upstream's race
        with ``suspend_flow`` ended."""
        super().stop_flow()
        if self._delivery is not None:
            self._delivery.cancel()

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        fetcher_stopped = fetcher._stopped.is_set  # type: ignore[attr-defined]
        try:
            while not (self._stopped.is_set() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                fetched = [pair async for pair in self.getmany(timeout=1.0)]
                # Upstream's Service.sleep(0) here is a wait_for on the stopped event: a
                # task made and cancelled per fetch. A bare yield does what it is for (a
                # getmany that never suspends cannot starve the loop); the loop's
                # condition notices a stop.
                await asyncio.sleep(0)
                if fetched and not self.should_stop:
                    progress = [0]
                    await self._delivered(fetched, progress)
                    self._skip(fetched[progress[0] :])
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _delivered(self, fetched: Fetched, progress: list[int]) -> None:
        """Deliver ``fetched`` in a task ``stop_flow`` can cancel; a cancellation of the
        drain's own task (the fetcher stopping) goes on up."""
        self._delivery = asyncio.ensure_future(self._deliver(fetched, progress))
        try:
            await self._delivery
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
        finally:
            self._delivery = None

    async def _deliver(self, fetched: Fetched, progress: list[int]) -> None:
        """Upstream's per-message body without the per-message ``wait_first``;
        ``progress[0]`` counts the messages done, for a suspension that cuts it short."""
        read_offset = self._read_offset
        suspended = self.suspend_flow.is_set
        for i, (tp, message) in enumerate(fetched):
            if suspended():
                return
            if i and not i % YIELD_EVERY:
                await asyncio.sleep(0)
            offset, r_offset = message.offset, read_offset[tp]
            if r_offset is None or offset >= r_offset:
                gap = offset - (r_offset or 0)
                if gap > 1 and r_offset and self.app.topics.acks_enabled_for(message.topic):
                    await self._add_gap(tp, r_offset + 1, offset)
                if self._commit_every is not None and self._n_acked >= self._commit_every:
                    self._n_acked = 0
                    await asyncio.shield(self.commit())  # upstream commits outside the race
                await self.callback(message)
                read_offset[tp] = offset
            progress[0] = i + 1

    def _skip(self, rest: Fetched) -> None:
        """Upstream advances the read offset of a message the suspension kept back."""
        for tp, message in rest:
            r_offset = self._read_offset[tp]
            if r_offset is None or message.offset >= r_offset:
                self._read_offset[tp] = message.offset

    @Service.transitions_to(CONSUMER_WAIT_EMPTY)
    async def wait_empty(self) -> None:
        """Upstream's wait for every message taken to be acknowledged (on shutdown and on
        a rebalance), within a bound. Upstream waits without a limit and swallows the
        cancellation that could bound it from outside, and a batch waiting out a Redis
        outage is never acknowledged: SIGTERM did not end the worker, nor would a
        rebalance end. Past the grace time the batch is left unacknowledged, so it is
        consumed again (its effects are idempotent); what was acknowledged is committed."""
        deadline = self.loop.time() + SHUTDOWN_GRACE_S
        while not self.should_stop and self._unacked_messages:
            if self.loop.time() > deadline:
                self.log.warning(
                    "%d messages still unacknowledged after %.0f s; leaving them to be "
                    "consumed again",
                    len(self._unacked_messages),
                    SHUTDOWN_GRACE_S,
                )
                break
            gc.collect()  # messages dropped from the agents' buffers leave the weak set
            await self.commit()
            if not self._unacked_messages:
                break
            await self._wait_for_ack(timeout=1)
            self._clean_unacked_messages()
        await self.commit_and_end_transactions()


class LeanTransport(driver.Transport):
    Consumer = LeanConsumer


def use_lean_consumer(app: AppT) -> None:
    """Give ``app`` the transport whose consumer drains per fetch; call it before the
    app's topics exist (they create the transport on first use)."""
    app.transport = LeanTransport(app.conf.broker_consumer, app)
