"""aiokafka's consumer on the worker's loop (pipeline/worker/onloop.py), without Kafka.

It undoes mode's ServiceThread and relies on how Faust's aiokafka consumer thread and
its rebalance callbacks are written: the first test fails when any of that upstream code
changes, so whoever upgrades faust-streaming or mode-streaming re-reads it against ours.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import threading
from importlib.metadata import version

import faust
import pytest
from faust.transport.consumer import ConsumerThread, ThreadDelegateConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, ConsumerRebalanceListener
from faust.types import TP
from mode import Service
from mode.threads import MethodQueue, QueueServiceThread, ServiceThread

from pipeline.worker.drain import LeanConsumer, use_lean_consumer
from pipeline.worker.onloop import LoopConsumerThread

# mode's Service lifecycle that LoopConsumerThread puts back in place of ServiceThread's.
SERVICE_LIFECYCLE = [
    Service.start,
    Service.maybe_start,
    Service.stop,
    Service.set_shutdown,
    Service._stopped_set,
    Service._stop_children,
    Service._stop_futures,
    Service._stop_exit_stacks,
]
# sha256 of the source of each, in faust-streaming 0.15.3 and mode-streaming 0.7.1.
UPSTREAM_SHA256 = {
    "ServiceThread": (
        [ServiceThread],
        "327e312386fa686bb665d76a7a1e653b4894d576d2421e8ec72dfa43d024763d",
    ),
    "QueueServiceThread": (
        [QueueServiceThread],
        "219c18b1f49990786f0883528e0a0a60c9d148168bdb938a8b8b2c60d068aa68",
    ),
    "MethodQueue": (
        [MethodQueue],
        "d21c54e20ac6ea8145922f914d5644fc84b7b4b8308c9f3ca298dda066461069",
    ),
    "ConsumerThread": (
        [ConsumerThread],
        "4914fd92c2a06b39b0b2eee09ccf421986f20b9871d2cd03f507410aa86c7ba5",
    ),
    "ThreadDelegateConsumer": (
        [ThreadDelegateConsumer],
        "a1b934b198fae1c0d8ddf7a6168cfecf59d0325cf901f7bf6f62604f23269085",
    ),
    "AIOKafkaConsumerThread": (
        [AIOKafkaConsumerThread],
        "8ca70be32815c1d0233ef628956ff7a26d4392513ac46afcc7abd8a7316318b8",
    ),
    "ConsumerRebalanceListener": (
        [ConsumerRebalanceListener],
        "f3d04f29dfb3f716e5c5725a0649e25fa92ed986a68ae798c3c85931adf87d9c",
    ),
    "Service lifecycle": (
        SERVICE_LIFECYCLE,
        "4c07bd4e6648c5ddb84c5d2b60e1c012c93560257c9f3fbf6227d86688c31a1e",
    ),
}
TOPIC = TP("cdp.events.web", 0)


@pytest.mark.parametrize("name", UPSTREAM_SHA256)
def test_the_upstream_code_it_replaces_or_relies_on_is_the_one_it_was_written_against(
    name: str,
) -> None:
    assert version("faust-streaming") == "0.15.3"
    assert version("mode-streaming") == "0.7.1"
    objects, expected = UPSTREAM_SHA256[name]
    source = "".join(inspect.getsource(o) for o in objects)
    assert hashlib.sha256(source.encode()).hexdigest() == expected, (
        f"upstream {name} changed: compare it with pipeline/worker/onloop.py, then update the hash"
    )


def consumer() -> LeanConsumer:
    app = faust.App("onloop-test", broker="kafka://127.0.0.1:1")
    use_lean_consumer(app)
    c = app.consumer
    assert isinstance(c, LeanConsumer)
    return c


async def test_the_consumer_thread_is_a_service_on_the_workers_loop() -> None:
    c = consumer()
    thread = c._thread
    assert isinstance(thread, LoopConsumerThread)
    assert thread.thread_loop is thread.parent_loop is c.loop is asyncio.get_running_loop()
    threads = threading.active_count()
    on_loop: list[bool] = []

    async def on_start() -> None:  # aiokafka's consumer is started here upstream
        on_loop.append(asyncio.get_running_loop() is c.loop)

    stopped: list[str] = []

    async def on_thread_stop() -> None:  # and stopped here
        stopped.append("consumer")

    thread.on_start = on_start  # type: ignore[method-assign]
    thread.on_thread_stop = on_thread_stop  # type: ignore[method-assign]
    await asyncio.wait_for(thread.start(), 5)
    assert on_loop == [True] and threading.active_count() == threads
    assert await thread.call_thread(asyncio.sleep, 0, "async") == "async"
    assert await thread.call_thread(lambda x: x, "plain") == "plain"
    await asyncio.wait_for(thread.stop(), 5)
    assert stopped == ["consumer"] and thread.should_stop


async def test_a_commit_inside_the_revoke_callback_completes_on_one_loop() -> None:
    """aiokafka's coordinator awaits the listener, which awaits Faust's revoke handler
    through the consumer's method queue; that handler waits for acknowledgements and
    commits through the consumer thread: on one loop none of it may wait on itself."""
    c = consumer()
    await c._method_queue.start()
    committed: list[dict[TP, int]] = []

    async def commit(offsets: dict[TP, int]) -> bool:
        await asyncio.sleep(0)  # aiokafka's commit is a round trip
        committed.append(offsets)
        return True

    async def on_partitions_revoked(revoked: set[TP]) -> None:  # Faust's, at its core
        await c.wait_empty()
        assert await c._thread.commit({tp: 5 for tp in revoked})

    c._thread._commit = commit  # type: ignore[method-assign]
    c.on_partitions_revoked = on_partitions_revoked  # type: ignore[method-assign]
    listener = ConsumerRebalanceListener(c._thread)
    started: list[bool] = []
    c.app.on_rebalance_start = lambda: started.append(True)  # type: ignore[method-assign]
    await asyncio.wait_for(listener.on_partitions_revoked({TOPIC}), 5)
    assert started == [True] and committed == [{TOPIC: 5}]
    await c._method_queue.stop()
