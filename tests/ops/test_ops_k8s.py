"""Kubernetes manifests under deploy/k8s, validated offline against the API schemas.

kubernetes-validate ships the OpenAPI-derived JSON schemas of each Kubernetes release, so
this needs no cluster and no network. The Strimzi custom resources have no built-in schema
(their CRDs come with the operator); they get a structural check instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.records import BROKER_MAX_RECORD_BYTES
from pipeline.settings import Topics
from pipeline.topics import owned_topics

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
STRIMZI = K8S / "strimzi-example"
# Oldest Kubernetes release the manifests must be valid for.
K8S_VERSION = "1.29"
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _validator() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("kubernetes-validate is not installed (pip install '.[test]')")
        pytest.skip("kubernetes-validate is not installed")
    return kubernetes_validate


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _manifests() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _resources() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{p.name}:{d['kind']}", d) for p in _manifests() for d in _documents(p)]


@pytest.mark.parametrize("resource", [pytest.param(d, id=w) for w, d in _resources()])
def test_manifest_is_valid_against_the_kubernetes_schema(resource: dict[str, Any]) -> None:
    kv = _validator()
    try:
        kv.validate(resource, K8S_VERSION, strict=True)
    except kv.ValidationError as exc:
        pytest.fail(f"{resource['kind']} {resource['metadata']['name']}: {exc.message}")


def test_validator_rejects_a_broken_deployment() -> None:
    """The validator really validates (offline): a typo'd field and a wrong type fail."""
    kv = _validator()
    deployment = next(d for _, d in _resources() if d["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "three"
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, K8S_VERSION, strict=True)
    typo = yaml.safe_load(yaml.safe_dump(deployment))
    typo["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kv.ValidationError):
        kv.validate(typo, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in _manifests())


def test_worker_deployment_essentials() -> None:
    resources = {d["kind"]: d for _, d in _resources()}
    deployment = resources["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["terminationGracePeriodSeconds"] >= 30
    assert (
        container["envFrom"][0]["configMapRef"]["name"]
        == resources["ConfigMap"]["metadata"]["name"]
    )
    labels = deployment["spec"]["selector"]["matchLabels"]
    assert resources["Service"]["spec"]["selector"] == labels
    assert resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == labels

    from pipeline.settings import VARIABLES

    documented = {v.name for v in VARIABLES}
    config = resources["ConfigMap"]["data"]
    assert set(config) <= documented, set(config) - documented
    assert config["CDP_HTTP_HOST"] == "0.0.0.0"
    assert container["ports"][0]["containerPort"] == int(config["CDP_HTTP_PORT"])


def test_worker_settings_are_read_by_a_worker_at_values_it_takes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every variable the Deployment sets is one a worker reads, at a value it accepts; the
    port it serves on is the one the probes, the scrape annotation and the Service use."""
    from pipeline.settings import VARIABLES, Settings

    resources = {d["kind"]: d for _, d in _resources()}
    template = resources["Deployment"]["spec"]["template"]
    (container,) = template["spec"]["containers"]
    config = resources["ConfigMap"]["data"]
    # CDP_STATE_DIR is where `cdp stack` keeps Kafka's jars and data: no worker reads it.
    read = {v.name for v in VARIABLES} - {"CDP_STATE_DIR"}
    named = set(config) | {e["name"] for e in container["env"]}
    assert named <= read, named - read
    for variable in VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    port = Settings.from_env().http_port
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert resources["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    # A managed Redis's password belongs in the Secret with the others: a URL there (env)
    # wins over the ConfigMap's (envFrom).
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert secrets["CDP_REDIS_URL"] == {"name": "cdp-worker", "key": "redis-url", "optional": True}
    # The worker writes only Faust's (empty) data directory, a temporary one under /tmp.
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]


def _strimzi() -> list[dict[str, Any]]:
    return [d for p in sorted(STRIMZI.glob("*.yaml")) for d in _documents(p)]


def test_strimzi_example_shape() -> None:
    """No schema ships for Strimzi's CRDs: check the shape the operator relies on."""
    docs = _strimzi()
    kinds = [d["kind"] for d in docs]
    assert kinds.count("Kafka") == 1
    assert "KafkaNodePool" in kinds
    (kafka,) = [d for d in docs if d["kind"] == "Kafka"]
    cluster = kafka["metadata"]["name"]
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False
    assert kafka["spec"]["kafka"]["config"]["message.max.bytes"] == BROKER_MAX_RECORD_BYTES
    for doc in docs:
        assert doc["apiVersion"] == "kafka.strimzi.io/v1beta2", doc["metadata"]["name"]
        assert _DNS1123.match(doc["metadata"]["name"]), doc["metadata"]["name"]
        if doc["kind"] in ("KafkaTopic", "KafkaNodePool"):
            assert doc["metadata"]["labels"]["strimzi.io/cluster"] == cluster
        if doc["kind"] == "KafkaTopic":
            spec = doc["spec"]
            assert isinstance(spec["partitions"], int) and spec["partitions"] > 0
            assert isinstance(spec["replicas"], int) and spec["replicas"] > 0


def test_strimzi_topics_cover_the_owned_topics() -> None:
    topics = {d["spec"]["topicName"]: d["spec"] for d in _strimzi() if d["kind"] == "KafkaTopic"}
    names = Topics("cdp.")
    owned = [
        names.profiles,
        names.deadletter,
        names.graph_changes,
        names.privacy_requests,
        names.privacy_receipts,
        names.profile_updates,
    ]
    assert set(owned) <= set(topics), set(owned) - set(topics)
    assert topics[names.profiles]["config"]["cleanup.policy"] == "compact"
    # The cleanup policies and sizes the worker creates them with (pipeline/topics.py).
    for spec in owned_topics(names):
        declared = topics[spec.name]["config"]
        assert declared.get("cleanup.policy", "delete") == spec.config["cleanup.policy"], spec
        if "max.message.bytes" in spec.config:
            assert str(declared["max.message.bytes"]) == spec.config["max.message.bytes"], spec
    # Bootstrap in the worker ConfigMap points at this cluster's bootstrap service.
    config = next(d for _, d in _resources() if d["kind"] == "ConfigMap")["data"]
    (kafka,) = [d for d in _strimzi() if d["kind"] == "Kafka"]
    service = f"{kafka['metadata']['name']}-kafka-bootstrap.{kafka['metadata']['namespace']}"
    assert config["CDP_KAFKA_BOOTSTRAP"].startswith(service)
