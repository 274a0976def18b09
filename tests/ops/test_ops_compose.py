"""docker-compose.yml: valid for the docker CLI, and the stack CONTRACT 1 promises."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.records import BROKER_MAX_RECORD_BYTES

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"


def kafka_version() -> str:
    # The local stack's broker (the scan of pipeline/stack/ it replaces found nothing once
    # the stack moved to cdp_tools/, and the fallback then always passed).
    from cdp_tools.stack.kafka import KAFKA_VERSION

    return KAFKA_VERSION


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = [docker, "compose", "version"]
        if subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.mark.parametrize("profile", [[], ["--profile", "cluster"]], ids=["default", "cluster"])
def test_docker_compose_config_is_valid(profile: list[str]) -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE), *profile, "config", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_services_of_the_full_stack() -> None:
    services = compose()["services"]
    assert {"kafka", "redis", "worker", "prometheus", "grafana"} <= set(services)


def test_kafka_is_kraft_at_the_tested_version_and_creates_channel_topics() -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{kafka_version()}"
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "true"
    assert env["KAFKA_MESSAGE_MAX_BYTES"] == str(BROKER_MAX_RECORD_BYTES)
    assert "INTERNAL://kafka:" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert any(v.endswith(":/var/lib/kafka/data") for v in kafka["volumes"])


def test_redis_persists_with_aof() -> None:
    redis = compose()["services"]["redis"]
    assert redis["image"] == "redis:7.0"
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--appendfsync always" in command  # the at-least-once guarantee (README)
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_cluster_profile() -> None:
    services = compose()["services"]
    nodes = [f"redis-cluster-{i}" for i in (1, 2, 3)]
    for name in nodes:
        node = services[name]
        assert node["profiles"] == ["cluster"] and node["image"] == "redis:7.0"
        command = " ".join(node["command"])
        assert "--cluster-enabled yes" in command
        assert "--appendfsync always" in command  # as durable as the single Redis
        assert node["volumes"] == [f"{name}:/data"]
    assert len({services[n]["volumes"][0] for n in nodes}) == 3
    init = services["redis-cluster-init"]
    assert init["profiles"] == ["cluster"] and init["restart"] == "no"
    assert {n: d["condition"] for n, d in init["depends_on"].items()} == dict.fromkeys(
        nodes, "service_healthy"
    )
    script = " ".join(init["command"])
    assert "--cluster create" in script and "--cluster-replicas 0 --cluster-yes" in script
    assert all(f"getent hosts {n} " in script for n in nodes)
    # The default stack is untouched: the workers keep the single Redis.
    assert "profiles" not in services["redis"] and "profiles" not in services["worker"]


def test_workers() -> None:
    doc = compose()
    worker = doc["services"]["worker"]
    assert worker["build"]["dockerfile"] == "deploy/Dockerfile"
    env = worker["environment"]
    bootstrap = env["CDP_KAFKA_BOOTSTRAP"]
    internal = doc["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"INTERNAL://{bootstrap}" in internal, "workers must use the internal listener"
    # The single Redis, unless CDP_COMPOSE_REDIS_URL names the cluster profile's nodes.
    assert env["CDP_REDIS_URL"] == "${CDP_COMPOSE_REDIS_URL:-redis://redis:6379/0}"
    assert env["CDP_HTTP_HOST"] == "0.0.0.0"
    assert worker["deploy"]["replicas"] >= 2
    for dep in ("kafka", "redis"):
        assert worker["depends_on"][dep]["condition"] == "service_healthy"
        assert "healthcheck" in doc["services"][dep]


def test_worker_environment_is_read_by_a_worker_at_values_it_takes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Settings a worker reads (CDP_STATE_DIR is `cdp stack`'s), at values it accepts
    (${VAR:-default} at its default), on the port Prometheus and the host ports use."""
    from pipeline.settings import VARIABLES, Settings

    doc = compose()
    env = doc["services"]["worker"]["environment"]
    read = {v.name for v in VARIABLES} - {"CDP_STATE_DIR"}
    assert set(env) <= read, set(env) - read
    for variable in VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value)))
    port = Settings.from_env().http_port
    assert all(p.endswith(f":{port}") for p in doc["services"]["worker"]["ports"])
    prometheus = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "cdp-worker"]
    assert job["dns_sd_configs"][0]["port"] == port


def test_named_volumes_and_monitoring_mounts() -> None:
    doc = compose()
    assert {"kafka-data", "redis-data", "prometheus-data", "grafana-data"} <= set(doc["volumes"])
    prom = doc["services"]["prometheus"]
    assert any(v.startswith("./deploy/prometheus:") for v in prom["volumes"])
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", prom["image"])
    grafana = doc["services"]["grafana"]
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", grafana["image"])
    mounts = " ".join(grafana["volumes"])
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning" in mounts
    assert "./deploy/grafana/dashboards:/etc/grafana/dashboards" in mounts
    for path in ("deploy/grafana/dashboards/cdp.json", "deploy/prometheus/prometheus.yml"):
        assert (REPO / path).is_file()


def test_dockerfile() -> None:
    text = (REPO / "deploy" / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(froms) >= 2, "multi-stage build"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, re.M)
    assert base and re.fullmatch(r"python:3\.11[\w.-]*-slim-bookworm(@sha256:\w+)?", base[1])
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in text and "/healthz" in text
    # The image runs workers; CDP_STATE_DIR is where `cdp stack` keeps its services.
    assert "CDP_STATE_DIR" not in text
    assert re.search(r'^ENTRYPOINT \["cdp"\]\s*\nCMD \["worker"\]', text, re.M)
    ignore = (REPO / ".dockerignore").read_text().split()
    assert "!pipeline/" in ignore and "!schemas/" in ignore
