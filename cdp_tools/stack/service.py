"""What Kafka and Redis have in common: pidfile, port checks, start-and-wait, stop, wipe."""

from __future__ import annotations

import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cdp_tools.stack import proc
from cdp_tools.stack.config import StackConfig, is_local
from cdp_tools.stack.errors import StackError

Say = Callable[[str], None]


@dataclass(frozen=True)
class ServiceState:
    name: str
    address: str
    running: bool
    pid: int | None  # None while running: something we did not start answers there

    def describe(self) -> str:
        if self.running and self.pid is not None:
            return f"{self.name}: running (pid {self.pid}, {self.address})"
        if self.running:
            return f"{self.name}: running at {self.address} (not started by cdp stack)"
        if self.pid is not None:
            return f"{self.name}: not answering (pid {self.pid}, {self.address}): starting or hung"
        return f"{self.name}: stopped ({self.address})"


class Service(ABC):
    name: str  # "kafka": file names, --only
    title: str  # "Kafka": messages
    variable: str  # the setting that holds its address
    other_port_hint: str  # that setting with another port, for the "port in use" message
    ready_timeout: float

    def __init__(self, config: StackConfig, host: str, port: int) -> None:
        self.config = config
        self.host = host
        self.port = port
        self.pidfile = config.run_dir / f"{self.name}.pid"
        self.logfile = config.logs_dir / f"{self.name}.log"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    @abstractmethod
    def data_dir(self) -> Path: ...

    @abstractmethod
    def markers(self, port: int) -> Sequence[str]:
        """Strings in the command line of a server this service started on ``port``.

        Checked before trusting a pidfile, so a reused pid is never signalled.
        """

    @abstractmethod
    def prepare(self, say: Say) -> list[str]:
        """Check prerequisites, write configuration, return the command that runs the server."""

    @abstractmethod
    def ready(self) -> bool:
        """Whether the server answers a real request (not merely accepts connections)."""

    def running(self) -> tuple[int, int] | None:
        """Pid and port of the server this service started, if it still runs.

        A pidfile whose process is gone, or is not ours any more, is removed.
        """
        recorded = proc.read_pidfile(self.pidfile)
        if recorded is None:
            self.pidfile.unlink(missing_ok=True)
            return None
        pid, port = recorded
        line = proc.cmdline(pid)
        if proc.alive(pid) and any(marker in line for marker in self.markers(port)):
            return recorded
        self.pidfile.unlink(missing_ok=True)
        return None

    def state(self) -> ServiceState:
        recorded = self.running()
        pid = recorded[0] if recorded else None
        return ServiceState(self.name, self.address, self.ready(), pid)

    def states(self) -> list[ServiceState]:
        return [self.state()]

    def refuse_remote(self) -> None:
        if not is_local(self.host):
            raise StackError(
                f"cdp stack up only starts local services; {self.variable} points at {self.address}"
            )

    def start(self, say: Say, adopt: bool = True) -> None:
        """Start the service, or use one already answering at its address when ``adopt``
        (not with `up --fresh`, which promises empty data it cannot give there)."""
        self.refuse_remote()
        recorded = self.running()
        if recorded is not None:
            pid, port = recorded
            if port != self.port:
                raise StackError(
                    f"the {self.title} of {self.config.state_dir} runs on port {port} "
                    f"(pid {pid}), not {self.port}: run `cdp stack down` first, or use "
                    "another CDP_STATE_DIR"
                )
            if self.ready():
                say(f"{self.title} already running (pid {pid}, {self.address})")
                return
            say(f"{self.title} (pid {pid}) is still starting; waiting...")
            self._wait(pid, time.monotonic(), log_offset=0)
            return
        if not proc.port_free(self.port):
            if self.ready() and not adopt:
                raise StackError(
                    f"{self.title} answers at {self.address} but was not started by cdp "
                    f"stack with {self.config.state_dir}, so --fresh cannot empty it: stop "
                    "it, point the variable elsewhere, or leave out --fresh to use it as it is"
                )
            if self.ready():  # a server of this kind answers there: what the variable means
                say(
                    f"{self.title} already answers at {self.address} "
                    "(not started by cdp stack here): using it"
                )
                return
            raise StackError(self._port_taken())
        command = self.prepare(say)
        say(f"starting {self.title} on 127.0.0.1:{self.port}...")
        offset = self.logfile.stat().st_size if self.logfile.exists() else 0
        started = time.monotonic()
        pid = proc.spawn(command, self.logfile)
        proc.write_pidfile(self.pidfile, pid, self.port)
        self._wait(pid, started, offset)
        say(f"{self.title} ready in {time.monotonic() - started:.1f} s (pid {pid})")

    def _port_taken(self) -> str:
        low, high = proc.ephemeral_ports()
        if not proc.listened_on(self.port) and low <= self.port <= high:
            # A client connection's end: it goes away by itself, and another may come.
            hint = self.other_port_hint.replace("<other port>", f"<port below {low}>")
            return (
                f"port {self.port} is held by a client connection, not a server: it is in "
                f"the range {low}-{high} this machine picks client ports from "
                f"(net.ipv4.ip_local_port_range); try again in a minute, or set {hint}"
            )
        owner = proc.port_owner(self.port)
        by = f" (pid {owner})" if owner else ""
        return (
            f"port {self.port} is in use by another process{by}; stop it or set "
            f"{self.other_port_hint}"
        )

    def _wait(self, pid: int, started: float, log_offset: int) -> None:
        while not self.ready():
            if not proc.alive(pid):
                self.pidfile.unlink(missing_ok=True)
                raise StackError(
                    f"{self.title} exited while starting; end of {self.logfile}:\n"
                    + proc.log_tail(self.logfile, log_offset)
                )
            if time.monotonic() - started > self.ready_timeout:
                proc.terminate(pid)
                self.pidfile.unlink(missing_ok=True)
                raise StackError(
                    f"{self.title} did not answer on {self.address} within "
                    f"{self.ready_timeout:.0f} s (stopped it); end of {self.logfile}:\n"
                    + proc.log_tail(self.logfile, log_offset)
                )
            time.sleep(0.2)

    def stop(self, say: Say) -> None:
        recorded = self.running()
        if recorded is None:
            if not proc.port_free(self.port) and self.ready():
                say(
                    f"{self.title} at {self.address} was not started by cdp stack here: "
                    "left running"
                )
            else:
                say(f"{self.title} is not running")
            return
        pid = recorded[0]
        started = time.monotonic()
        killed = proc.terminate(pid)
        self.pidfile.unlink(missing_ok=True)
        how = "killed after not stopping" if killed else "stopped"
        say(f"{self.title} {how} (pid {pid}) in {time.monotonic() - started:.1f} s")

    def wipe(self, say: Say) -> None:
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
            say(f"removed {self.title} data in {self.data_dir}")
