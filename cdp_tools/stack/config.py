"""Where the services go: addresses from CDP_KAFKA_BOOTSTRAP / CDP_REDIS_URL, files under
CDP_STATE_DIR."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cdp_tools.stack.errors import StackError
from pipeline.identity.connect import RedisUrlError, is_cluster, parse_cluster_url
from pipeline.settings import env

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "ip6-localhost"})


def parse_bootstrap(bootstrap: str) -> tuple[str, int]:
    """Host and port of the first server in a Kafka bootstrap list."""
    first = bootstrap.split(",")[0].strip()
    if "://" in first:  # tolerate PLAINTEXT://host:port
        first = first.split("://", 1)[1]
    if not first:
        raise StackError(f"CDP_KAFKA_BOOTSTRAP is empty or malformed: {bootstrap!r}")
    if first.startswith("["):  # [::1]:9092
        host, _, rest = first[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = first.rpartition(":") if ":" in first else (first, "", "")
    return host, _port(port_text or "9092", "CDP_KAFKA_BOOTSTRAP", bootstrap)


@dataclass(frozen=True)
class RedisAddress:
    host: str
    port: int
    db: int
    password: str | None
    cluster: int = 0  # masters of a local cluster that a redis+cluster:// URL names


def _cluster_address(url: str) -> RedisAddress:
    """A redis+cluster:// URL names the local cluster of masters on consecutive ports from
    its first seed (3 at least, as `--redis-cluster 3`)."""
    try:
        parsed = parse_cluster_url(url)
    except RedisUrlError as exc:
        raise StackError(str(exc)) from None
    (host, port), hosts = parsed.seeds[0], {h for h, _ in parsed.seeds}
    if (
        parsed.tls
        or hosts != {host}
        or [p for _, p in parsed.seeds] != list(range(port, port + len(parsed.seeds)))
    ):
        raise StackError(
            f"cdp stack starts a local cluster on one host and consecutive ports, without "
            f"TLS: CDP_REDIS_URL=redis+cluster://{host}:{port} (or :{port},{host}:{port + 1},...) "
            f"is {url!r}"
        )
    return RedisAddress(host, port, 0, parsed.password, max(3, len(parsed.seeds)))


def parse_redis_url(url: str) -> RedisAddress:
    if is_cluster(url):
        return _cluster_address(url)
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise StackError(f"cdp stack starts a plain redis:// server; CDP_REDIS_URL is {url!r}")
    db_text = parts.path.strip("/") or "0"
    if not db_text.isdigit():
        raise StackError(f"CDP_REDIS_URL has a database that is not a number: {url!r}")
    try:
        port = parts.port or 6379
    except ValueError:
        raise StackError(f"CDP_REDIS_URL has a bad port: {url!r}") from None
    password = unquote(parts.password) if parts.password else None
    return RedisAddress(parts.hostname or "localhost", port, int(db_text), password)


def is_local(host: str) -> bool:
    return host.lower() in LOCAL_HOSTS or host.startswith("127.")


def _port(text: str, variable: str, value: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise StackError(f"{variable} has a bad port: {value!r}")
    return int(text)


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path
    kafka_host: str
    kafka_port: int
    redis: RedisAddress

    @classmethod
    def from_env(cls) -> StackConfig:
        host, port = parse_bootstrap(env("CDP_KAFKA_BOOTSTRAP"))
        return cls(
            state_dir=Path(env("CDP_STATE_DIR")).absolute(),
            kafka_host=host,
            kafka_port=port,
            redis=parse_redis_url(env("CDP_REDIS_URL")),
        )

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"
