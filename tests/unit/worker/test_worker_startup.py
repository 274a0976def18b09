"""A worker that cannot serve its HTTP API says so before it starts, naming the settings:
Faust's web server failed to bind only once the worker ran, with a traceback."""

from __future__ import annotations

import socket

import pytest

from pipeline.settings import VARIABLES, Settings
from pipeline.worker.run import StartupError, check_http, check_redis, prepare


@pytest.fixture(autouse=True)
def _defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)


def _settings(monkeypatch: pytest.MonkeyPatch, host: str, port: int) -> Settings:
    monkeypatch.setenv("CDP_HTTP_HOST", host)
    monkeypatch.setenv("CDP_HTTP_PORT", str(port))
    return Settings.from_env()


def test_a_port_another_process_listens_on_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(StartupError, match=f"127.0.0.1:{port}") as refused:
            check_http(_settings(monkeypatch, "127.0.0.1", port))
    assert "CDP_HTTP_PORT" in str(refused.value)


@pytest.mark.parametrize("host", ["192.0.2.1", "no-such-host.invalid"])
def test_an_address_this_machine_does_not_have_is_refused(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    with pytest.raises(StartupError, match="CDP_HTTP_HOST"):
        check_http(_settings(monkeypatch, host, 6066))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0.0.0.0", "::"])
def test_a_free_port_passes_and_is_left_free(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    check_http(_settings(monkeypatch, host, port))
    socket.create_server(("127.0.0.1", port)).close()


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
async def test_kafka_that_does_not_answer_names_the_security_protocol_when_it_is_set(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """A broker that runs but refuses the handshake (SASL or TLS against another listener)
    was told to be started with `cdp stack up`."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    monkeypatch.setenv("CDP_KAFKA_BOOTSTRAP", f"127.0.0.1:{port}")
    monkeypatch.setenv("CDP_KAFKA_SECURITY_PROTOCOL", protocol)
    monkeypatch.setenv("CDP_KAFKA_REQUEST_TIMEOUT_S", "2")
    with pytest.raises(StartupError, match="cannot reach Kafka") as refused:
        await prepare(Settings.from_env())
    named = f"CDP_KAFKA_SECURITY_PROTOCOL={protocol}" in str(refused.value)
    assert named == (protocol != "PLAINTEXT")


async def test_redis_that_does_not_answer_is_named_without_its_password() -> None:
    """Found from outside: the start-up error printed CDP_REDIS_URL whole, password
    included, and the client's exception repr."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(StartupError) as refused:
        await check_redis(f"redis://cdp:s3cret@127.0.0.1:{port}/0")
    said = str(refused.value)
    assert said.startswith(f"cannot reach Redis at 127.0.0.1:{port}/0: ")
    assert "s3cret" not in said and "ConnectionError(" not in said
    assert "CDP_REDIS_URL" in said


async def test_kafka_that_does_not_answer_is_said_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    monkeypatch.setenv("CDP_KAFKA_BOOTSTRAP", f"127.0.0.1:{port}")
    monkeypatch.setenv("CDP_KAFKA_REQUEST_TIMEOUT_S", "2")
    with pytest.raises(StartupError) as refused:
        await prepare(Settings.from_env())
    said = str(refused.value)
    assert said.startswith(f"cannot reach Kafka at 127.0.0.1:{port}: ") or said.startswith(
        f"Kafka at 127.0.0.1:{port} did not answer within 2 s"
    )
    assert "Error(" not in said and "\n" not in said
