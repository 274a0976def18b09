"""Addresses and paths from the environment."""

from pathlib import Path

import pytest

from cdp_tools.stack.config import StackConfig, is_local, parse_bootstrap, parse_redis_url
from cdp_tools.stack.errors import StackError


@pytest.mark.parametrize(
    ("bootstrap", "expected"),
    [
        ("localhost:9092", ("localhost", 9092)),
        ("127.0.0.1:39092,other:9093", ("127.0.0.1", 39092)),
        (" PLAINTEXT://127.0.0.1:19092 ", ("127.0.0.1", 19092)),
        ("[::1]:9094", ("::1", 9094)),
        ("localhost", ("localhost", 9092)),
    ],
)
def test_bootstrap_first_server(bootstrap: str, expected: tuple[str, int]) -> None:
    assert parse_bootstrap(bootstrap) == expected


@pytest.mark.parametrize("bootstrap", ["", "localhost:abc", "localhost:70000"])
def test_bad_bootstrap(bootstrap: str) -> None:
    with pytest.raises(StackError, match="CDP_KAFKA_BOOTSTRAP"):
        parse_bootstrap(bootstrap)


def test_redis_url() -> None:
    address = parse_redis_url("redis://:s%40cret@127.0.0.1:36379/2")
    assert (address.host, address.port, address.db, address.password) == (
        "127.0.0.1",
        36379,
        2,
        "s@cret",
    )
    assert parse_redis_url("redis://localhost").port == 6379


@pytest.mark.parametrize("url", ["rediss://localhost:6379/0", "redis://localhost:6379/x"])
def test_unsupported_redis_url(url: str) -> None:
    with pytest.raises(StackError, match="CDP_REDIS_URL"):
        parse_redis_url(url)


def test_local_hosts() -> None:
    assert all(is_local(h) for h in ("localhost", "127.0.0.1", "127.0.1.1", "::1"))
    assert not any(is_local(h) for h in ("kafka", "10.0.0.5", "example.com"))


def test_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CDP_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("CDP_REDIS_URL", raising=False)
    monkeypatch.setenv("CDP_STATE_DIR", "state")
    config = StackConfig.from_env()
    assert config.state_dir == tmp_path / "state"
    assert (config.kafka_host, config.kafka_port) == ("localhost", 9092)
    assert (config.redis.host, config.redis.port, config.redis.db) == ("localhost", 6379, 0)
