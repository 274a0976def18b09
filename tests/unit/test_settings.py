"""Settings are checked at start: a value a worker cannot use is refused, naming its
variable, rather than misbehaving later or failing deep inside a library."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.settings import VARIABLES, Settings


@pytest.fixture(autouse=True)
def _defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)


def test_the_defaults_are_valid() -> None:
    settings = Settings.from_env()
    assert (settings.recent_events, settings.http_port, settings.log_level) == (20, 6066, "info")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("CDP_HTTP_PORT", "abc", "must be a number, not 'abc'"),
        ("CDP_HTTP_PORT", "70000", "must be from 1 to 65535"),
        ("CDP_RECENT_EVENTS", "-1", "must be at least 0"),
        ("CDP_BATCH_SIZE", "0", "must be at least 1"),
        ("CDP_DEDUPE_TTL_S", "0", "must be at least 1"),
        ("CDP_MAX_EVENT_BYTES", "-5", "must be at least 1"),
        ("CDP_TOPIC_PARTITIONS", "0", "must be at least 1"),
        ("CDP_REDIS_MIN_REPLICAS", "-1", "must be at least 0"),
        ("CDP_REDIS_REPLICA_TIMEOUT_MS", "0", "must be at least 1"),  # WAIT 0 never ends
        ("CDP_KAFKA_REQUEST_TIMEOUT_S", "soon", "must be a number"),
        ("CDP_OUTPUT_ENCODING", "xml", "must be msgpack or json, not 'xml'"),
        ("CDP_MERGE_POLICY", "bogus", "must be timestamp or source_precedence"),
        ("CDP_LOG_FORMAT", "xml", "must be text or json"),
        ("CDP_LOG_LEVEL", "verbose", "must be debug, info, warning or error"),
        ("CDP_KAFKA_SECURITY_PROTOCOL", "FOO", "must be PLAINTEXT, SSL, SASL_PLAINTEXT or"),
        ("CDP_KAFKA_SASL_MECHANISM", "GSSAPI", "must be PLAIN, SCRAM-SHA-256 or"),
        ("CDP_TOPIC_PREFIX", "a b", "may hold only letters, digits"),
        # A channel is [a-z0-9_-]+ (its topic's suffix): "CRM" or "in store" would never
        # rank any value, and the policy would quietly fall back to time alone.
        ("CDP_SOURCE_PRECEDENCE", "CRM,web", "not 'CRM'"),
        ("CDP_SOURCE_PRECEDENCE", "crm,in store", "not 'in store'"),
        # Set but naming no channel (an empty value in a compose file or a manifest):
        # refused as an empty CDP_KAFKA_BOOTSTRAP is, not source_precedence silently
        # ranking every channel alike.
        ("CDP_SOURCE_PRECEDENCE", "", "must name at least one channel"),
        ("CDP_SOURCE_PRECEDENCE", " , ,", "must name at least one channel"),
        # A channel listed twice ranked at its last place, below what it was listed before.
        ("CDP_SOURCE_PRECEDENCE", "crm,web,crm", "lists 'crm' twice"),
        # Were "cannot reach Kafka at  (...)" and a ValueError from int() inside aiokafka.
        ("CDP_KAFKA_BOOTSTRAP", " ", "must name at least one host:port"),
        ("CDP_KAFKA_BOOTSTRAP", "kafka:9092,kafka2:x", "has a bad port in 'kafka2:x'"),
        # Faust's "App requires an id!" and a temporary directory's path, as tracebacks.
        ("CDP_APP_ID", "", "must not be empty"),
        # Set but empty bound the API, privacy deletes included, to every interface
        # (asyncio's reading of an empty host), where the default is loopback alone.
        ("CDP_HTTP_HOST", "", "0.0.0.0"),
        ("CDP_HTTP_HOST", " ", "0.0.0.0"),
        ("CDP_APP_ID", "team/cdp", "may not hold '/'"),
        # redis-py's own ValueError came out of the worker as a traceback.
        ("CDP_REDIS_URL", "localhost:6379", "must start with redis://, rediss://, unix://"),
        ("CDP_REDIS_URL", "http://redis:6379", "must start with redis://, rediss://, unix://"),
    ],
)
def test_unusable_values_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name) as refused:
        Settings.from_env()
    assert says in str(refused.value)


@pytest.mark.parametrize(
    ("name", "value", "field", "read"),
    [
        ("CDP_LOG_LEVEL", "WARNING", "log_level", "warning"),
        ("CDP_TOPIC_PREFIX", "", "topic_prefix", ""),
        ("CDP_TOPIC_PREFIX", "acme_eu-1.", "topic_prefix", "acme_eu-1."),
        ("CDP_KAFKA_REQUEST_TIMEOUT_S", "2.5", "kafka_request_timeout_s", 2.5),
        ("CDP_RECENT_EVENTS", "0", "recent_events", 0),  # no recent events listed
        ("CDP_KAFKA_BOOTSTRAP", "kafka", "kafka_bootstrap", "kafka"),  # port 9092
        ("CDP_KAFKA_BOOTSTRAP", "[::1]:9092, b:9093", "kafka_bootstrap", "[::1]:9092, b:9093"),
    ],
)
def test_edge_values_that_work(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str, read: object
) -> None:
    monkeypatch.setenv(name, value)
    assert getattr(Settings.from_env(), field) == read


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "rediss://:secret@cache.example.com:6380/2",
        "unix:///run/redis.sock",
        "redis+cluster://10.0.0.1:7000,10.0.0.2:7000",
        "rediss+cluster://user:pw@config.example.com:6379",
    ],
)
def test_redis_urls_of_every_documented_form_are_taken(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("CDP_REDIS_URL", url)
    assert Settings.from_env().redis_url == url


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_a_ca_bundle_that_cannot_be_read_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, protocol: str
) -> None:
    """ssl.create_default_context's FileNotFoundError or SSLError came out of the worker
    as a traceback from deep inside its Kafka client's set-up."""
    monkeypatch.setenv("CDP_KAFKA_SECURITY_PROTOCOL", protocol)
    missing, garbage = tmp_path / "missing.pem", tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    for bundle in (missing, garbage):
        monkeypatch.setenv("CDP_KAFKA_SSL_CAFILE", str(bundle))
        with pytest.raises(ValueError, match="CDP_KAFKA_SSL_CAFILE") as refused:
            Settings.from_env()
        assert str(bundle) in str(refused.value)


def test_a_ca_bundle_is_not_opened_without_tls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CDP_KAFKA_SSL_CAFILE", str(tmp_path / "missing.pem"))
    assert Settings.from_env().kafka_ssl_cafile.endswith("missing.pem")
