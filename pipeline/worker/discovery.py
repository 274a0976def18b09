"""Discovery of new channel topics: a producer creates ``cdp.events.kiosk`` and the worker
consumes it within seconds, without a restart (CONTRACT 2).

Faust cannot subscribe by pattern, so a timer lists the broker's topics and adds new
matches to the stitch agent's topic; the conductor resubscribes the consumer.

The list is the metadata of every topic on the cluster, decoded in pure Python: 12-19 ms
of CPU at 400 topics, growing with each topic. On the worker's event loop that stopped
every event in flight for as long (more on a busy machine) every 2 s, so the admin client
runs on an event loop of its own thread: the worker's loop takes the interpreter back
within the switch interval (pipeline/worker/run.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any

import faust
from faust.transport.conductor import Conductor
from faust.types import TopicT

from pipeline.settings import Settings, Topics
from pipeline.topics import admin_client

log = logging.getLogger(__name__)

# The conductor waits this long before resubscribing, so that agent restarts batch up
# (45 s upstream); a new channel topic should be consumed within seconds instead. It is
# a class attribute without a setting: tests/unit/worker/test_worker_wiring.py fails
# if faust-streaming changes how it is used.
RESUBSCRIBE_DELAY_S = 1.0
RESUBSCRIBE_ATTRIBUTE = "_resubscribe_sleep_lock_seconds"


class ChannelDiscovery:
    def __init__(self, app: faust.App, settings: Settings, events_topic: TopicT) -> None:
        self.app = app
        self.settings = settings
        self.events_topic = events_topic
        topics = Topics(settings.topic_prefix)
        self._pattern = re.compile(topics.events_pattern)
        self._channel_prefix = topics.events("")
        self._strays: set[str] = set()  # named like a channel topic but none: told once
        self._admin: Any = None  # used on the discovery thread only
        self._loop: asyncio.AbstractEventLoop | None = None

    async def discover(self) -> list[str]:
        """Subscribe to channel topics created since the last call; their names."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, name="discovery", daemon=True).start()
        names = await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(self._list_topics(), self._loop)
        )
        self._name_strays(names)
        topic = self.events_topic
        new = sorted(n for n in names if self._pattern.match(n) and n not in topic.topics)
        if new:
            log.info("new channel topics: %s", ", ".join(new))
            self._subscribe(new)
        return new

    def _name_strays(self, names: list[str]) -> None:
        """A producer writing to cdp.events.Kiosk expects it read, and nothing would say
        that it never is."""
        strays = sorted(
            n
            for n in names
            if n.startswith(self._channel_prefix)
            and n not in self._strays
            and not self._pattern.match(n)
        )
        if strays:
            self._strays.update(strays)
            log.warning(
                "not read, as no channel topic's name: %s (a channel topic is %s<channel>, "
                "the channel [a-z0-9_-]+)",
                ", ".join(strays),
                self._channel_prefix,
            )

    async def _list_topics(self) -> list[str]:
        """Every topic's name (on the discovery thread's loop)."""
        if self._admin is None:
            admin = admin_client(self.settings)
            await admin.start()
            self._admin = admin
        return list(await self._admin.list_topics())

    def _subscribe(self, new: list[str]) -> None:
        conductor: Conductor = self.app.topics  # type: ignore[assignment]
        setattr(conductor, RESUBSCRIBE_ATTRIBUTE, RESUBSCRIBE_DELAY_S)
        # The agent consumes clones of our topic; clones share its config mapping.
        clones = [c for c in conductor if getattr(c, "config", None) is self.events_topic.config]
        for channel in {self.events_topic, *clones}:
            channel.topics = [*channel.topics, *new]
        for clone in clones:  # discard + add: the conductor's public way to resubscribe
            conductor.discard(clone)
            conductor.add(clone)
