"""Kafka 3.9 in KRaft mode (one node, broker and controller), from Maven Central jars."""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from cdp_tools.stack import proc
from cdp_tools.stack.config import StackConfig
from cdp_tools.stack.errors import StackError
from cdp_tools.stack.service import Say, Service
from pipeline.records import BROKER_MAX_RECORD_BYTES

KAFKA_VERSION = "3.9.1"
MIN_JAVA = 11  # Kafka 3.9 brokers run on Java 11+; 17 is what we test and recommend
INSTALL_JAVA = "install OpenJDK 17+: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"

# Full coordinates: a bare "dependency:" prefix costs a metadata lookup and picks whatever
# version the local Maven's super-POM names.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

# 3.9 logs through reload4j and its pom brings no backend: without these two it logs nothing.
POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>cdp.stack</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version>
    </dependency>
    <dependency>
      <groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>1.2.25</version>
    </dependency>
  </dependencies>
</project>
"""

LOG4J = """log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
# Per-partition chatter drowns the lines that explain a failure.
log4j.logger.kafka.log=WARN
log4j.logger.org.apache.kafka.storage=WARN
log4j.logger.state.change.logger=WARN
"""

_NETWORK_ERRORS = (
    "UnknownHostException",
    "Unknown host",
    "Connect timed out",
    "Connection refused",
    "Connection reset",
    "Network is unreachable",
    "No route to host",
    "Read timed out",
    "PKIX path building failed",
    "Could not transfer",
    # Every artifact the POM names is on Central: not found means a proxy or mirror in
    # front of it did not serve it.
    "Could not find artifact",
)


def render_properties(port: int, controller_port: int, data_dir: Path) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        # One broker: every replication factor is 1; small internal topics start faster.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "group.initial.rebalance.delay.ms": "0",
        # Like most brokers, this one creates a channel topic on first produce, so that
        # producing to cdp.events.<new channel> is enough (CONTRACT 2). The topics the
        # pipeline owns never rely on it: the worker creates them with their config.
        "auto.create.topics.enable": "true",
        "num.partitions": "4",
        # Events above CDP_MAX_EVENT_BYTES must reach the worker to be dead-lettered.
        "message.max.bytes": str(BROKER_MAX_RECORD_BYTES),
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def java_major(version_output: str) -> int | None:
    """Major version from `java -version` output: 'version "17.0.15"' -> 17, "1.8.0" -> 8."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home, "bin", "java")) if java_home else None
    if java is None or not os.access(java, os.X_OK):
        java = shutil.which("java")
    if java is None:
        raise StackError(f"Kafka needs Java and there is no `java` on PATH: {INSTALL_JAVA}")
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    major = java_major(result.stderr + result.stdout)
    if major is None:
        raise StackError(f"could not tell the version of {java}: {result.stderr.strip()}")
    if major < MIN_JAVA:
        raise StackError(
            f"Kafka {KAFKA_VERSION} needs Java {MIN_JAVA} or newer and {java} is Java {major}: "
            f"{INSTALL_JAVA}"
        )
    return java


def maven_failure(output: str, returncode: int, log_path: Path) -> str:
    """What to tell the user when mvn failed, from what it printed."""
    lines = output.splitlines()
    # mvn warns about each failed transfer before the [ERROR] that names the cause.
    causes = [ln for ln in lines if any(err in ln for err in _NETWORK_ERRORS)]
    network = next((ln for ln in causes if ln.startswith("[ERROR]")), None) or next(
        iter(causes), None
    )
    if network is not None:
        return (
            "could not download the Kafka jars from Maven Central "
            f"(https://repo.maven.apache.org):\n  {network.strip()}\n"
            "Behind a proxy or without direct access, add a <proxy> or a <mirror> to "
            "~/.m2/settings.xml (https://maven.apache.org/guides/mini/guide-proxies.html), or "
            "pass proxy settings through MAVEN_OPTS (-Dhttps.proxyHost=... "
            f"-Dhttps.proxyPort=...). Full output: {log_path}"
        )
    tail = "\n".join(lines[-15:])
    return (
        f"mvn failed (exit {returncode}) fetching the Kafka jars:\n{tail}\nFull output: {log_path}"
    )


def cluster_id() -> str:
    """A random KRaft cluster id. One starting with '-' would read as an option to the
    storage tool (1 in 64 of them): like Kafka's own random-uuid, draw again."""
    cid = "-"
    while cid.startswith("-"):
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    return cid


def metadata_ready(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether the broker answers a Metadata request listing at least one broker.

    The port accepts connections well before the broker serves requests, so a TCP connect
    alone would report ready too early. Metadata v4 exists in every Kafka from 1.0 to 4.x.
    """
    client_id = b"cdp-stack"
    body = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id + struct.pack(">ib", 0, 0)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = _recv_exactly(sock, 16)  # size, correlation id, throttle, broker count
    except OSError:
        return False
    _size, correlation, _throttle, brokers = struct.unpack(">iiii", header)
    return correlation == 1 and brokers > 0


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


class Kafka(Service):
    name = "kafka"
    title = "Kafka"
    variable = "CDP_KAFKA_BOOTSTRAP"
    other_port_hint = "CDP_KAFKA_BOOTSTRAP=127.0.0.1:<other port>"
    ready_timeout = 90.0

    def __init__(self, config: StackConfig) -> None:
        super().__init__(config, config.kafka_host, config.kafka_port)
        self.home = config.state_dir / "kafka"
        self.libs = self.home / "libs"
        self.properties = self.home / "server.properties"
        self.log4j = self.home / "log4j.properties"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def markers(self, port: int) -> Sequence[str]:
        return (str(self.properties),)

    def ready(self) -> bool:
        return metadata_ready(self.host, self.port)

    def prepare(self, say: Say) -> list[str]:
        java = find_java()
        self.resolve_jars(say)
        controller_port = self.port + 1
        if self.port >= 65535 or not proc.port_free(controller_port):
            controller_port = proc.free_port()
        self.properties.write_text(render_properties(self.port, controller_port, self.data_dir))
        self.log4j.write_text(LOG4J)
        jvm = [
            java,
            "-Xmx512m",
            # Kafka's own start scripts' collector: the serial one stopped the broker
            # for 25-55 ms every few seconds under load, which showed in every
            # event-to-profile tail (two trips through the broker).
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.log4j}",
            "-cp",
            f"{self.libs}/*",
        ]
        if not (self.data_dir / "meta.properties").exists():
            self._format(jvm)
        return [*jvm, "kafka.Kafka", str(self.properties)]

    def _format(self, jvm: list[str]) -> None:
        command = [*jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id()]
        command += ["-c", str(self.properties), "--ignore-formatted"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(
                f"formatting Kafka storage in {self.data_dir} failed:\n"
                + (result.stderr or result.stdout).strip()
            )

    def resolve_jars(self, say: Say) -> None:
        """Copy the broker's jars into the state dir once; a marker records a complete set."""
        marker = self.libs / ".complete"
        if marker.exists() and marker.read_text().strip() == KAFKA_VERSION:
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError(
                "Maven (mvn) is needed once to fetch the Kafka jars from Maven Central: "
                "apt-get install maven"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        pom = self.home / "pom.xml"
        pom.write_text(POM)
        shutil.rmtree(self.libs, ignore_errors=True)  # a partial earlier attempt
        say(f"resolving Kafka {KAFKA_VERSION} jars from Maven Central (first time only, ~1 min)...")
        log_path = self.config.logs_dir / "maven.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [mvn, "-B", "-f", str(pom), f"{DEPENDENCY_PLUGIN}:copy-dependencies"]
        command += ["-DincludeScope=runtime", f"-DoutputDirectory={self.libs}"]
        started = time.monotonic()
        output, returncode = _run_with_progress(command, log_path, say)
        if returncode != 0:
            raise StackError(maven_failure(output, returncode, log_path))
        jars = len(list(self.libs.glob("*.jar")))
        marker.write_text(KAFKA_VERSION + "\n")
        say(f"resolved {jars} jars in {time.monotonic() - started:.0f} s")


def _run_with_progress(command: list[str], log_path: Path, say: Say) -> tuple[str, int]:
    """Run mvn, keeping its output in ``log_path`` and saying every 10 s how far it got."""
    lines: list[str] = []
    downloads = 0
    last_report = time.monotonic()
    with (
        open(log_path, "w") as log,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as child,
    ):
        assert child.stdout is not None  # stdout=PIPE
        for line in child.stdout:
            log.write(line)
            lines.append(line)
            downloads += "Downloaded from" in line
            if time.monotonic() - last_report >= 10:
                say(f"  ... {downloads} files downloaded")
                last_report = time.monotonic()
    return "".join(lines), child.returncode
