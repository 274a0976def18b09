"""Detached processes, pidfiles and ports: the plumbing shared by both services."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

# Children started by this Python process: polling them reaps them, so a fixture that runs
# up() and down() in one process never mistakes a zombie for a live server.
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(command: Sequence[str], log_path: Path) -> int:
    """Start ``command`` in its own session (so it outlives us and can be killed as a group)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[child.pid] = child
    return child.pid


def alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_state(pid) != "Z"


def _proc_state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[0]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def read_pidfile(path: Path) -> tuple[int, int] | None:
    """The pid and port a pidfile records ("<pid>\\n<port>\\n"), if it holds both."""
    try:
        fields = path.read_text().split()
    except FileNotFoundError:
        return None
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        return None
    return int(fields[0]), int(fields[1])


def write_pidfile(path: Path, pid: int, port: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid}\n{port}\n")


def terminate(pid: int, timeout: float = 20.0) -> bool:
    """SIGTERM the process group, SIGKILL it after ``timeout``; True if it had to be killed."""
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            _children.pop(pid, None)
            return False
        time.sleep(0.1)
    _signal_group(pid, signal.SIGKILL)
    while alive(pid):
        time.sleep(0.05)
    _children.pop(pid, None)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        # spawn() made the process a group leader; anything else gets only the one signal.
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def ephemeral_ports() -> tuple[int, int]:
    """The range the kernel picks client ports from (Linux's default when unreadable)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except (OSError, ValueError):
        return 32768, 60999
    return int(low), int(high)


def listened_on(port: int) -> bool:
    return bool(_listening_inodes(port))


def port_owner(port: int) -> int | None:
    """Pid of the process listening on ``port``, when /proc lets us see it."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(proc.name)
        except OSError:  # not ours to look at, or gone meanwhile
            continue
    return None


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rpartition(":")[2], 16) == port:
                inodes.add(inode)
    return inodes


def log_tail(path: Path, since: int = 0, lines: int = 25) -> str:
    """The last ``lines`` lines written to ``path`` after byte offset ``since``."""
    try:
        with open(path, "rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"
