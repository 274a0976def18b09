"""The worker's wiring without a broker: `cdp topology` reads it from the app, and the
Faust internals the worker relies on are still what it was written against."""

from __future__ import annotations

import dataclasses
import gc
import inspect
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import faust
import pytest
from faust.assignor.leader_assignor import LeaderAssignor
from faust.transport.conductor import Conductor

from pipeline.identity import config as identity_config
from pipeline.identity.commands import GraphStore
from pipeline.identity.connect import connect
from pipeline.settings import Settings
from pipeline.worker.app import COMMIT_EVERY_MESSAGES, create_app
from pipeline.worker.discovery import RESUBSCRIBE_ATTRIBUTE, ChannelDiscovery
from pipeline.worker.run import LowPauseWorker


def test_topology_is_read_from_the_wired_app() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pipeline", "topology"],
        capture_output=True,
        text=True,
        check=True,
        env={"CDP_TOPIC_PREFIX": "acme."},
    ).stdout
    agents = out.split("agent ")[1:]
    by_name = {block.split("\n")[0]: block for block in agents}
    assert set(by_name) == {"stitch", "publish", "privacy"}
    assert "reads   acme.events.<channel>" in by_name["stitch"]
    # The stitch agent publishes its profiles itself: no update notes (README, Upgrading).
    assert "writes  acme.deadletter, acme.graph-changes, acme.profiles\n" in by_name["stitch"]
    assert "reads   acme.internal.profile-updates" in by_name["publish"]
    assert "writes  acme.profiles" in by_name["publish"]
    assert "acme.profiles, acme.privacy-receipts" in by_name["privacy"]
    assert "writes  acme.internal.profile-updates" not in out
    assert "/v1/profiles/{profile_id}" in out


def test_the_conductor_still_resubscribes_as_discovery_expects() -> None:
    """Discovery shortens the conductor's resubscribe delay, a class attribute without a
    setting (faust-streaming 0.15.3, pinned): fail loudly if upstream changes it."""
    assert faust.__version__ == "0.15.3"
    assert getattr(Conductor, RESUBSCRIBE_ATTRIBUTE) == 45.0
    subscriber = inspect.getsource(Conductor._subscriber.fun)  # a mode ServiceTask
    assert f"await self.sleep(self.{RESUBSCRIBE_ATTRIBUTE})" in subscriber
    assert "self._flag_changes()" in inspect.getsource(Conductor.discard)


async def test_the_heap_is_frozen_once_the_worker_has_started() -> None:
    """Faust calls the worker's ``on_startup_finished`` once its services run; what
    exists by then is moved out of the collector's reach (full collections stalled the
    worker for tens of milliseconds walking it)."""
    assert "await self.on_startup_finished()" in inspect.getsource(faust.App.on_started)
    worker = LowPauseWorker(faust.App("freeze-test", broker="kafka://127.0.0.1:1"), quiet=True)
    gc.unfreeze()
    try:
        await worker.on_startup_finished()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_offsets_are_committed_by_the_timer_only(tmp_path: Path) -> None:
    """Faust's count-based commit runs inside the loop that delivers fetched messages
    (pipeline/worker/drain.py, as upstream), which waits for its round trip; the timer
    commits the same acknowledged offsets every second from a task of its own."""
    settings = Settings.from_env()
    config = identity_config.load(None)
    app = create_app(
        settings, config, GraphStore(connect(settings.redis_url), config), [], datadir=tmp_path
    ).app
    assert app.conf.broker_commit_interval == 1.0
    assert app.conf.broker_commit_every == COMMIT_EVERY_MESSAGES >= sys.maxsize


def test_the_worker_reads_no_topic_outside_the_prefix(tmp_path: Path) -> None:
    """Found from outside: with CDP_TOPIC_PREFIX=acme. the worker also created and read
    Faust's `cdp-pipeline-__assignor-__leader`, outside the prefix. Faust's own setting
    turns it off (its leader assignor declares the topic only without it)."""
    settings = dataclasses.replace(Settings.from_env(), topic_prefix="acme.")
    config = identity_config.load(None)
    store = GraphStore(connect(settings.redis_url), config)
    app = create_app(settings, config, store, [], datadir=tmp_path).app
    assert app.conf.topic_disable_leader
    assert "if not self.app.conf.topic_disable_leader:" in inspect.getsource(
        LeaderAssignor.on_start
    )


async def test_a_topic_named_like_a_channel_that_is_none_is_named_once_in_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A producer that writes to cdp.events.Kiosk or cdp.events.in.store expects it read;
    it never is (a channel is [a-z0-9_-]+), so the worker says so instead of nothing."""
    topic = SimpleNamespace(topics=["cdp.events.web"], config={})
    discovery = ChannelDiscovery(faust.App("discovery-test"), Settings.from_env(), topic)
    names = ["cdp.events.web", "cdp.events.Kiosk", "cdp.events.in.store", "cdp.profiles"]

    async def listed() -> list[str]:
        return names

    monkeypatch.setattr(discovery, "_list_topics", listed)
    with caplog.at_level(logging.WARNING, logger="pipeline.worker.discovery"):
        assert await discovery.discover() == []
        assert await discovery.discover() == []
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "cdp.events.Kiosk" in warning and "cdp.events.in.store" in warning
    assert "cdp.profiles" not in warning and "[a-z0-9_-]+" in warning
