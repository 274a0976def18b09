"""Settings are checked at start: a value a worker cannot use is refused, naming its
variable, rather than misbehaving later or failing deep inside a library."""

from __future__ import annotations

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
    ],
)
def test_edge_values_that_work(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str, read: object
) -> None:
    monkeypatch.setenv(name, value)
    assert getattr(Settings.from_env(), field) == read
