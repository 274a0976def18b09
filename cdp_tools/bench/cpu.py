"""CPU time of processes from /proc, so a benchmark can show which one is the ceiling."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from cdp_tools.stack import proc
from pipeline.settings import Settings

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14, 15)


def age_seconds(pid: int) -> float | None:
    """Seconds since ``pid`` started (None if it is gone). A broker that started less than
    a minute or two before a run still compiles its hot paths and spends up to twice the
    CPU per request of a warm one (docs/benchmarks.md)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except OSError:
        return None
    return uptime - int(fields[19]) / _TICK  # starttime (field 22), in ticks since boot


def main_thread_seconds(pid: int) -> tuple[float, float]:
    """Seconds the main thread of ``pid`` (a worker's event loop) has run on a core and
    waited for one so far (Linux schedstat; zeros if it is gone)."""
    try:
        on_core, waiting, _ = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(on_core) / 1e9, int(waiting) / 1e9


def stack_pids(settings: Settings) -> dict[str, int]:
    """The local stack's Redis and Kafka pids, from ``cdp stack``'s pidfiles."""
    run_dir = Path(settings.state_dir).absolute() / "run"
    pids = {}
    for name in ("redis", "kafka"):
        recorded = proc.read_pidfile(run_dir / f"{name}.pid")
        if recorded is not None:
            pids[name] = recorded[0]
    return pids


def cpu_pressure_us() -> int | None:
    """Microseconds in which some task waited for a core, since boot (Linux PSI)."""
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return int(some.rsplit("total=", 1)[1])


@dataclass
class CpuWindow:
    """CPU each named process spent since the window was opened, and how contended the
    machine's cores were meanwhile (latency figures mean little without it)."""

    pids: dict[str, int]
    at_start: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.at_start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.threads_at_start = {n: main_thread_seconds(pid) for n, pid in self.pids.items()}
        self.opened = time.monotonic()
        self.pressure_at_start = cpu_pressure_us()

    def spent(self) -> dict[str, float]:
        return {n: cpu_seconds(pid) - self.at_start[n] for n, pid in self.pids.items()}

    def main_thread_spent(self, name: str) -> float:
        """CPU seconds the main thread of the named process ran since the window opened:
        the rest of the process's CPU is its other threads' (a worker's: Faust's consumer
        thread, which every fetch goes through, and channel discovery's)."""
        return main_thread_seconds(self.pids[name])[0] - self.threads_at_start[name][0]

    def main_threads(self, names: list[str], wall: float) -> str:
        """``worker1 on a core 60%, waiting for one 25%, asleep 15%``: the share of
        ``wall`` seconds in which the main thread of each named process ran, was ready to
        run but had no core, and waited for something else (a reply, input): the last is
        what overlapping the round trips can take back, the second what load took."""
        shares = []
        for name in names:
            (on0, wait0), (on1, wait1) = (
                self.threads_at_start[name],
                main_thread_seconds(self.pids[name]),
            )
            on, waiting = (on1 - on0) / wall, (wait1 - wait0) / wall
            shares.append(
                f"{name} on a core {100 * on:.0f}%, waiting for one {100 * waiting:.0f}%, "
                f"asleep {100 * max(0.0, 1 - on - waiting):.0f}%"
            )
        return "; ".join(shares)

    def machine(self) -> str:
        """``load average 2.1, a task waited for a core 31% of the time`` (the second
        part where Linux reports CPU pressure)."""
        load = os.getloadavg()[0]
        now, start = cpu_pressure_us(), self.pressure_at_start
        if now is None or start is None:
            return f"load average {load:.1f}"
        waited = (now - start) / 1e6 / (time.monotonic() - self.opened)
        return f"load average {load:.1f}, a task waited for a core {100 * waited:.0f}% of the time"


def describe(cpu: dict[str, float], wall: float, events: int) -> str:
    """``name 87% of a core (140 us/event)`` for each process."""
    return ", ".join(
        f"{name} {100 * s / wall:.0f}% of a core ({1e6 * s / max(1, events):.0f} us/event)"
        for name, s in cpu.items()
    )
