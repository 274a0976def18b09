"""`cdp stack up --redis-cluster N`: real redis-server masters in cluster mode on loopback."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from redis.cluster import RedisCluster

from cdp_tools.stack import down, proc, status, up
from cdp_tools.stack.cli import stack
from cdp_tools.stack.errors import StackError
from cdp_tools.stack.redis_cluster import SLOTS, free_base
from cdp_tools.stack.redis_server import render_conf

needs_redis = pytest.mark.skipif(
    not (shutil.which("redis-server") and shutil.which("redis-cli")),
    reason="no redis-server / redis-cli (apt-get install redis-server)",
)


@pytest.fixture
def base_port(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[int]:
    port = free_base(3)
    monkeypatch.setenv("CDP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CDP_KAFKA_BOOTSTRAP", f"127.0.0.1:{proc.free_port()}")
    monkeypatch.setenv("CDP_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    yield port
    down(say=lambda _: None)  # whatever a failed test left running


def test_cluster_conf() -> None:
    conf = render_conf(7000, Path("/d"), "pw", cluster=True)
    assert "cluster-enabled yes\n" in conf and "cluster-config-file nodes.conf\n" in conf
    assert 'masterauth "pw"' in conf and "appendfsync always" in conf
    assert "cluster-enabled" not in render_conf(7000, Path("/d"), None)


@needs_redis
def test_cluster_lifecycle(base_port: int, tmp_path: Path) -> None:
    said: list[str] = []
    up(only="redis", redis_cluster=3, say=said.append)
    assert said[-1].startswith("Redis cluster ok: 3 masters at 127.0.0.1:")

    client = RedisCluster(host="127.0.0.1", port=base_port)
    try:
        assert client.cluster_info()["cluster_state"] == "ok"
        ranges = client.cluster_slots(target_nodes=RedisCluster.RANDOM)  # {(lo, hi): ...}
        covered = sorted(s for lo, hi in ranges for s in range(lo, hi + 1))
        assert covered == list(range(SLOTS))
        masters = {node.port for node in client.get_primaries()}
        assert masters == {base_port, base_port + 1, base_port + 2}
        for i in range(30):  # keys land on every master, and read back
            client.set(f"k{i}", i)
        assert [int(client.get(f"k{i}")) for i in range(30)] == list(range(30))
        assert {client.get_node_from_key(f"k{i}").port for i in range(30)} == masters
    finally:
        client.close()

    states = status(only="redis")
    assert [s.name for s in states] == [f"redis-cluster-{base_port + i}" for i in range(3)]
    assert all(s.running for s in states)
    pids = [s.pid for s in states]

    up(only="redis", redis_cluster=3, say=said.append)  # idempotent
    assert said[-4:-1] == [
        f"Redis cluster node {p} already running (pid {pid}, 127.0.0.1:{p})"
        for p, pid in zip(range(base_port, base_port + 3), pids, strict=True)
    ]

    down(only="redis", say=said.append)  # the nodes restart into the same cluster
    assert all(pid is not None and not proc.alive(pid) for pid in pids)
    up(only="redis", redis_cluster=3, say=said.append)
    client = RedisCluster(host="127.0.0.1", port=base_port)
    assert int(client.get("k7")) == 7
    client.close()

    result = CliRunner().invoke(stack, ["status", "--only", "redis"])
    assert result.output.count("redis-cluster-") == 3, result.output

    assert sum("creating the Redis cluster" in line for line in said) == 1

    down(only="redis", wipe=True, say=said.append)
    assert list((tmp_path / "state" / "redis-cluster").iterdir()) == []
    assert status(only="redis")[0].running is False
    assert len(status(only="redis")) == 1  # the single Redis's line; no nodes recorded


@needs_redis
def test_cluster_with_replicas(base_port: int) -> None:
    said: list[str] = []
    up(only="redis", redis_cluster=3, redis_replicas=1, say=said.append)
    assert said[-1].startswith("Redis cluster ok: 3 masters, 1 replica(s) each at 127.0.0.1:")
    client = RedisCluster(host="127.0.0.1", port=base_port)
    try:
        assert len(client.get_primaries()) == 3
        flags = [node["flags"] for node in client.cluster_nodes().values()]
        assert sum("slave" in f for f in flags) == 3, flags
        client.set("k", 1)
        # The replica of k's master received the write (WAIT on the same connection).
        assert client.pipeline().set("k", 2).execute_command(
            "WAIT", 1, 5000, target_nodes=client.get_node_from_key("k")
        ).execute() == [True, 1]
    finally:
        client.close()
    assert len(status(only="redis")) == 6


def test_replicas_need_a_cluster(base_port: int) -> None:
    with pytest.raises(StackError, match="--redis-cluster 3"):
        up(only="redis", redis_replicas=1, say=lambda _: None)


@needs_redis
def test_taken_port(base_port: int) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base_port + 1))
        taken.listen()
        with pytest.raises(StackError, match=f"port {base_port + 1} is in use"):
            up(only="redis", redis_cluster=3, say=lambda _: None)


def test_no_redis_cli(base_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match="needs `redis-server` on PATH: apt-get install"):
        up(only="redis", redis_cluster=3, say=lambda _: None)
    server = shutil.which("redis-server")
    if server:
        (tmp_path / "redis-server").symlink_to(server)
        with pytest.raises(StackError, match="needs `redis-cli` on PATH"):
            up(only="redis", redis_cluster=3, say=lambda _: None)


def test_cli_refuses_fewer_than_three(base_port: int) -> None:
    result = CliRunner().invoke(stack, ["up", "--redis-cluster", "2"])
    assert result.exit_code == 2 and "--redis-cluster" in result.output


def test_probe_of_a_stopped_node_is_empty(base_port: int) -> None:
    from cdp_tools.stack.config import StackConfig
    from cdp_tools.stack.redis_cluster import ClusterNode

    node = ClusterNode(StackConfig.from_env(), base_port)
    assert node.cluster_info() == {}
    assert isinstance(node.client(), redis.Redis)


@needs_redis
def test_a_cluster_url_starts_a_local_cluster(
    base_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cdp stack up` starts Redis where CDP_REDIS_URL points, a cluster URL too."""
    monkeypatch.setenv("CDP_REDIS_URL", f"redis+cluster://127.0.0.1:{base_port}")
    said: list[str] = []
    up(only="redis", say=said.append)
    assert said[-1] == (
        f"Redis cluster ok: 3 masters at 127.0.0.1:{base_port}, "
        f"127.0.0.1:{base_port + 1}, 127.0.0.1:{base_port + 2}"
    )
    assert [s.running for s in status(only="redis")] == [True] * 3
    down(only="redis", wipe=True, say=said.append)


def test_cluster_url_forms_the_stack_can_start() -> None:
    from cdp_tools.stack.config import parse_redis_url

    assert parse_redis_url("redis+cluster://127.0.0.1:7000").cluster == 3
    five = ",".join(f"127.0.0.1:{7000 + i}" for i in range(5))
    assert parse_redis_url(f"redis+cluster://:pw@{five}").cluster == 5
    for url in ("redis+cluster://127.0.0.1:7000,127.0.0.1:7005", "rediss+cluster://h:7000"):
        with pytest.raises(StackError, match="consecutive ports"):
            parse_redis_url(url)
