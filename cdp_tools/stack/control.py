"""up / down / status over the selected services; the functions the CLI and fixtures call."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from cdp_tools.stack.config import StackConfig
from cdp_tools.stack.kafka import Kafka
from cdp_tools.stack.redis_server import Redis
from cdp_tools.stack.service import Say, Service, ServiceState

__all__ = ["ServiceState", "down", "status", "up"]

Only = Literal["kafka", "redis"] | None


def _say(message: str) -> None:
    print(message, flush=True)


@contextmanager
def _services(only: Only) -> Iterator[list[Service]]:
    """The selected services, with the state dir locked: parallel test workers that all call
    up() must not start two brokers over one data dir."""
    config = StackConfig.from_env()
    config.run_dir.mkdir(parents=True, exist_ok=True)
    with open(config.run_dir / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Redis first: it is up in a blink, so a Kafka failure is reported last and alone.
        services: list[Service] = [Redis(config), Kafka(config)]
        yield [s for s in services if only in (None, s.name)]


def up(only: Only = None, fresh: bool = False, say: Say = _say) -> None:
    """Start the services where the settings point (local only); ``fresh`` empties them first."""
    with _services(only) as services:
        for service in services:
            service.refuse_remote()
        if fresh:
            for service in services:
                service.stop(say)
                service.wipe(say)
        for service in services:
            service.start(say)


def down(only: Only = None, wipe: bool = False, say: Say = _say) -> None:
    """Stop what ``up`` started; ``wipe`` also removes their data (not the downloaded jars)."""
    with _services(only) as services:
        for service in reversed(services):
            service.stop(say)
            if wipe:
                service.wipe(say)


def status(only: Only = None) -> list[ServiceState]:
    with _services(only) as services:
        return [service.state() for service in services]
