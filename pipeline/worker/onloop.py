"""aiokafka's consumer on the worker's own event loop instead of a thread of Faust's.

Faust's aiokafka consumer (a ``ThreadDelegateConsumer``) runs aiokafka in an
``AIOKafkaConsumerThread``, a mode ``QueueServiceThread`` with an event loop of its own:
every fetch, commit and seek is handed to that thread through a method queue and its
result handed back. At steady rates the thread was a third to two fifths of a worker's
CPU (about 0.7 ms per fetch) and the two threads contended for the interpreter
(docs/benchmarks.md). aiokafka is an asyncio library and needs no thread of its own.

``LoopConsumerThread`` is Faust's class started as a plain mode ``Service`` on the
worker's loop: its ``thread_loop`` is that loop, ``call_thread`` awaits the function,
and mode's ``Service`` start and stop replace ``ServiceThread``'s, which start and
join a thread (its ``crash`` works on one loop as it is). The rebalance callbacks still
reach Faust's consumer through its method queue on the worker's loop (upstream's
``threadsafe_partitions_revoked`` and ``_assigned``): a task of its own that aiokafka's
coordinator awaits, so the revoke handler's wait for acknowledgements and its commit
run as they did with the thread, where that commit already ran on the coordinator's
loop.

faust-streaming and mode-streaming are pinned (pyproject.toml) and
tests/unit/worker/test_worker_onloop.py fails when the upstream code this replaces or
relies on changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from faust.transport.drivers import aiokafka as driver
from mode import Service
from mode.utils.futures import maybe_async


class LoopConsumerThread(driver.AIOKafkaConsumerThread):
    # A thread signals its end from its own loop; a Service has nothing to wait for.
    wait_for_shutdown = False

    start = Service.start
    maybe_start = Service.maybe_start
    stop = Service.stop
    set_shutdown = Service.set_shutdown
    _stopped_set = Service._stopped_set
    _stop_children = Service._stop_children
    _stop_futures = Service._stop_futures
    _stop_exit_stacks = Service._stop_exit_stacks

    def __init__(
        self, consumer: driver.Consumer, *, loop: asyncio.AbstractEventLoop, **kwargs: Any
    ) -> None:
        super().__init__(consumer, loop=loop, thread_loop=loop, **kwargs)

    async def on_stop(self) -> None:
        # What the thread ran on its way out: stops aiokafka's consumer (leaving the group).
        await self.on_thread_stop()

    @Service.task
    async def _thread_keepalive(self) -> None:
        """Upstream wakes the thread's loop every second; there is no other loop here."""

    async def call_thread(
        self, fun: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> Any:
        # As upstream's method queue runs it: some of the functions are not coroutines.
        return await maybe_async(fun(*args, **kwargs))
