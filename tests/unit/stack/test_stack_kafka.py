"""Kafka's configuration, Java and Maven checks, and start failures, without a real broker."""

import os
import socket
import stat
import uuid
from pathlib import Path

import pytest

from cdp_tools.stack import proc, up
from cdp_tools.stack.errors import StackError
from cdp_tools.stack.kafka import (
    KAFKA_VERSION,
    cluster_id,
    java_major,
    maven_failure,
    render_properties,
)
from pipeline.records import BROKER_MAX_RECORD_BYTES


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("CDP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CDP_KAFKA_BOOTSTRAP", f"127.0.0.1:{_free_port()}")
    monkeypatch.setenv("CDP_REDIS_URL", f"redis://127.0.0.1:{_free_port()}/0")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    return tmp_path / "state"


def _path_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **scripts: str) -> None:
    """PATH holding only the given shell scripts (name -> body)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in scripts.items():
        script = bin_dir / name
        script.write_text("#!/bin/sh\n" + body + "\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))


JAVA_17 = (
    """if [ "$1" = -version ]; then echo 'openjdk version "17.0.15" 2025-04-15' >&2; exit 0; fi"""
)


def test_properties() -> None:
    text = render_properties(39092, 39093, Path("/s/kafka/data"))
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:39093"
    assert props["log.dirs"] == "/s/kafka/data"
    assert props["auto.create.topics.enable"] == "true"
    assert props["num.partitions"] == "4"
    assert props["message.max.bytes"] == str(BROKER_MAX_RECORD_BYTES)
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_292"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ("garbage", None),
    ],
)
def test_java_major(output: str, major: int | None) -> None:
    assert java_major(output) == major


def test_no_java(state: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _path_with(monkeypatch, tmp_path)
    with pytest.raises(StackError, match=r"no `java` on PATH.*openjdk-17-jre-headless"):
        up(only="kafka", say=lambda _: None)


def test_old_java(state: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _path_with(monkeypatch, tmp_path, java="""echo 'java version "1.8.0_292"' >&2""")
    with pytest.raises(StackError, match=r"needs Java 11 or newer .* is Java 8"):
        up(only="kafka", say=lambda _: None)


def test_no_maven(state: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _path_with(monkeypatch, tmp_path, java=JAVA_17)
    with pytest.raises(StackError, match="apt-get install maven"):
        up(only="kafka", say=lambda _: None)


def test_maven_unreachable_message(tmp_path: Path) -> None:
    output = (
        "[WARNING] Could not transfer metadata x from/to central: transfer failed\n"
        "[ERROR] Plugin p could not be resolved: Connect to repo.maven.apache.org:443 "
        "failed: Connection refused -> [Help 1]\n"
    )
    message = maven_failure(output, 1, tmp_path / "maven.log")
    assert "Maven Central" in message
    assert "[ERROR] Plugin p" in message
    assert "settings.xml" in message
    assert "MAVEN_OPTS" in message


def test_maven_behind_a_proxy_that_serves_nothing(tmp_path: Path) -> None:
    """What mvn printed with a proxy (-Dhttps.proxyHost) that answered without the files:
    every artifact we ask for is on Maven Central, so "not found" is the repository's
    doing, and the proxy advice applies (was a 15-line tail of mvn's output)."""
    output = (
        "[WARNING] The POM for org.apache.maven.plugins:maven-dependency-plugin:jar:3.8.1 is "
        "missing, no dependency information available\n"
        "[ERROR] Plugin org.apache.maven.plugins:maven-dependency-plugin:3.8.1 or one of its "
        "dependencies could not be resolved: Could not find artifact "
        "org.apache.maven.plugins:maven-dependency-plugin:jar:3.8.1 in central "
        "(https://repo.maven.apache.org/maven2) -> [Help 1]\n"
    )
    message = maven_failure(output, 1, tmp_path / "maven.log")
    assert message.startswith("could not download the Kafka jars from Maven Central")
    assert "Could not find artifact" in message
    assert "settings.xml" in message


def test_maven_other_failure_shows_tail(tmp_path: Path) -> None:
    message = maven_failure("[ERROR] something else\n", 1, tmp_path / "maven.log")
    assert "mvn failed (exit 1)" in message
    assert "something else" in message


def test_broker_that_dies_shows_log(
    state: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Jars and storage in place, so the fake java is started as the broker and exits.
    (state / "kafka" / "libs").mkdir(parents=True)
    (state / "kafka" / "libs" / ".complete").write_text(KAFKA_VERSION)
    (state / "kafka" / "data").mkdir()
    (state / "kafka" / "data" / "meta.properties").write_text("")
    _path_with(monkeypatch, tmp_path, java=JAVA_17 + "\necho 'FATAL broker boom'; exit 1")
    with pytest.raises(StackError, match=r"(?s)Kafka exited while starting.*FATAL broker boom"):
        up(only="kafka", say=lambda _: None)
    assert not (state / "run" / "kafka.pid").exists()


def test_port_taken(state: Path) -> None:
    port = int(os.environ["CDP_KAFKA_BOOTSTRAP"].rpartition(":")[2])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        with pytest.raises(StackError) as caught:
            up(only="kafka", say=lambda _: None)
    assert str(caught.value) == (
        f"port {port} is in use by another process (pid {os.getpid()}); stop it or set "
        "CDP_KAFKA_BOOTSTRAP=127.0.0.1:<other port>"
    )


def test_remote_kafka_refused(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDP_KAFKA_BOOTSTRAP", "kafka.example.com:9092")
    with pytest.raises(StackError) as caught:
        up(say=lambda _: None)
    assert str(caught.value) == (
        "cdp stack up only starts local services; CDP_KAFKA_BOOTSTRAP points at "
        "kafka.example.com:9092"
    )


def test_a_cluster_id_never_reads_as_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xf8 encodes to a leading '-' (base64url 62): `format -t -...` failed 1 run in 64.
    drawn = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x04" + bytes(15))])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(drawn))
    assert cluster_id() == "BAAAAAAAAAAAAAAAAAAAAA"


def test_port_held_by_a_client_connection(state: Path) -> None:
    """Nothing listens, but a connection's local end holds the port (the kernel picks
    client ports from the ephemeral range, where these test ports are): "in use by another
    process", with no process to stop, sent people looking for a server."""
    port = int(os.environ["CDP_KAFKA_BOOTSTRAP"].rpartition(":")[2])
    low, high = proc.ephemeral_ports()
    assert low <= port <= high  # free_port() draws from the same range
    with socket.create_server(("127.0.0.1", 0)) as server, socket.socket() as client:
        client.bind(("127.0.0.1", port))
        client.connect(server.getsockname())
        with pytest.raises(StackError) as caught:
            up(only="kafka", say=lambda _: None)
    message = str(caught.value)
    assert message.startswith(f"port {port} is held by a client connection")
    assert f"{low}-{high}" in message
    assert "CDP_KAFKA_BOOTSTRAP=127.0.0.1:<port below" in message
