"""Every setting is an environment variable; this table is the single list of them.

README's configuration table is generated from ``VARIABLES`` (``cdp config``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NamedTuple

from pipeline.model import POLICIES


class Variable(NamedTuple):
    name: str
    default: str
    doc: str


VARIABLES: tuple[Variable, ...] = (
    Variable("CDP_KAFKA_BOOTSTRAP", "localhost:9092", "Kafka bootstrap servers (host:port,...)."),
    Variable(
        "CDP_REDIS_URL",
        "redis://localhost:6379/0",
        "Redis URL; rediss:// for TLS, redis://:password@host for AUTH; "
        "redis+cluster://host:port,host:port for a Redis Cluster (its seed nodes).",
    ),
    Variable(
        "CDP_REDIS_MIN_REPLICAS",
        "0",
        "Replicas that must hold each identity write (Redis WAIT) before its events are "
        "acknowledged; 0 does not wait. See README, Redis Cluster.",
    ),
    Variable(
        "CDP_REDIS_REPLICA_TIMEOUT_MS",
        "1000",
        "How long one WAIT for CDP_REDIS_MIN_REPLICAS lasts before the write is retried.",
    ),
    Variable(
        "CDP_IDENTITY_CONFIG",
        "",
        "Path of an identity configuration TOML file that replaces schemas/identity.default.toml.",
    ),
    Variable("CDP_TOPIC_PREFIX", "cdp.", "Prefix of every topic the pipeline reads or owns."),
    Variable("CDP_TOPIC_PARTITIONS", "4", "Partitions of the topics the pipeline creates."),
    Variable("CDP_TOPIC_REPLICATION", "1", "Replication factor of the topics it creates."),
    Variable(
        "CDP_APP_ID",
        "cdp-pipeline",
        "Kafka consumer group / Faust app id; workers with the same id share the partitions.",
    ),
    Variable("CDP_HTTP_HOST", "127.0.0.1", "Address the worker's HTTP API binds to."),
    Variable("CDP_HTTP_PORT", "6066", "Port of the worker's HTTP API (one per worker)."),
    Variable(
        "CDP_API_TOKEN",
        "",
        "If set, every HTTP route but /healthz, /readyz and "
        "/metrics needs 'Authorization: Bearer <token>'.",
    ),
    Variable("CDP_OUTPUT_ENCODING", "msgpack", "Encoding of output records: msgpack or json."),
    Variable("CDP_MERGE_POLICY", POLICIES[0], f"Default merge policy: {' or '.join(POLICIES)}."),
    Variable(
        "CDP_SOURCE_PRECEDENCE",
        "crm,loyalty,pos,callcenter,mobile,web",
        "Channel order for the source_precedence policy, strongest first.",
    ),
    Variable("CDP_RECENT_EVENTS", "20", "Length of events.recent in a profile."),
    Variable(
        "CDP_BATCH_SIZE",
        "500",
        "Most events stitched in one Redis call. A batch is an event and the backlog "
        "buffered behind it: with none, an event is stitched and its profile published "
        "at once; under load, updates of one profile in a batch become one publication.",
    ),
    Variable(
        "CDP_DEDUPE_TTL_S", "604800", "How long an event_id is remembered for redelivery (seconds)."
    ),
    Variable("CDP_MAX_EVENT_BYTES", "1048576", "Largest accepted event value (bytes)."),
    Variable("CDP_STATE_DIR", ".cdp", "Where `cdp stack` keeps jars, data, logs and pids."),
    Variable("CDP_LOG_FORMAT", "text", "text or json."),
    Variable("CDP_LOG_LEVEL", "info", "debug, info, warning or error."),
    Variable(
        "CDP_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    ),
    Variable("CDP_KAFKA_SASL_MECHANISM", "PLAIN", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."),
    Variable("CDP_KAFKA_SASL_USERNAME", "", "SASL user name."),
    Variable("CDP_KAFKA_SASL_PASSWORD", "", "SASL password."),
    Variable("CDP_KAFKA_SSL_CAFILE", "", "CA bundle for SSL/SASL_SSL."),
    Variable("CDP_KAFKA_REQUEST_TIMEOUT_S", "30", "Give up on a silent broker after this long."),
)

_DEFAULTS = {v.name: v.default for v in VARIABLES}


def env(name: str) -> str:
    """The variable's value, or its documented default."""
    return os.environ.get(name, _DEFAULTS[name])


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str
    redis_url: str
    redis_min_replicas: int
    redis_replica_timeout_ms: int
    identity_config: str
    topic_prefix: str
    topic_partitions: int
    topic_replication: int
    app_id: str
    http_host: str
    http_port: int
    api_token: str
    output_encoding: str
    merge_policy: str
    source_precedence: tuple[str, ...]
    recent_events: int
    batch_size: int
    dedupe_ttl_s: int
    max_event_bytes: int
    state_dir: str
    log_format: str
    log_level: str
    kafka_security_protocol: str
    kafka_sasl_mechanism: str
    kafka_sasl_username: str
    kafka_sasl_password: str
    kafka_ssl_cafile: str
    kafka_request_timeout_s: float

    @classmethod
    def from_env(cls) -> Settings:
        encoding = env("CDP_OUTPUT_ENCODING")
        if encoding not in ("msgpack", "json"):
            raise ValueError(f"CDP_OUTPUT_ENCODING must be msgpack or json, not {encoding!r}")
        policy = env("CDP_MERGE_POLICY")
        if policy not in POLICIES:
            raise ValueError(f"CDP_MERGE_POLICY must be {' or '.join(POLICIES)}, not {policy!r}")
        return cls(
            kafka_bootstrap=env("CDP_KAFKA_BOOTSTRAP"),
            redis_url=env("CDP_REDIS_URL"),
            redis_min_replicas=int(env("CDP_REDIS_MIN_REPLICAS")),
            redis_replica_timeout_ms=int(env("CDP_REDIS_REPLICA_TIMEOUT_MS")),
            identity_config=env("CDP_IDENTITY_CONFIG"),
            topic_prefix=env("CDP_TOPIC_PREFIX"),
            topic_partitions=int(env("CDP_TOPIC_PARTITIONS")),
            topic_replication=int(env("CDP_TOPIC_REPLICATION")),
            app_id=env("CDP_APP_ID"),
            http_host=env("CDP_HTTP_HOST"),
            http_port=int(env("CDP_HTTP_PORT")),
            api_token=env("CDP_API_TOKEN"),
            output_encoding=encoding,
            merge_policy=policy,
            source_precedence=tuple(
                c.strip() for c in env("CDP_SOURCE_PRECEDENCE").split(",") if c.strip()
            ),
            recent_events=int(env("CDP_RECENT_EVENTS")),
            batch_size=int(env("CDP_BATCH_SIZE")),
            dedupe_ttl_s=int(env("CDP_DEDUPE_TTL_S")),
            max_event_bytes=int(env("CDP_MAX_EVENT_BYTES")),
            state_dir=env("CDP_STATE_DIR"),
            log_format=env("CDP_LOG_FORMAT"),
            log_level=env("CDP_LOG_LEVEL"),
            kafka_security_protocol=env("CDP_KAFKA_SECURITY_PROTOCOL"),
            kafka_sasl_mechanism=env("CDP_KAFKA_SASL_MECHANISM"),
            kafka_sasl_username=env("CDP_KAFKA_SASL_USERNAME"),
            kafka_sasl_password=env("CDP_KAFKA_SASL_PASSWORD"),
            kafka_ssl_cafile=env("CDP_KAFKA_SSL_CAFILE"),
            kafka_request_timeout_s=float(env("CDP_KAFKA_REQUEST_TIMEOUT_S")),
        )


class Topics:
    """The topic names under the configured prefix (CONTRACT 2)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.events_pattern = "^" + prefix.replace(".", r"\.") + r"events\.[a-z0-9_-]+$"
        self.profiles = prefix + "profiles"
        self.deadletter = prefix + "deadletter"
        self.graph_changes = prefix + "graph-changes"
        self.privacy_requests = prefix + "privacy-requests"
        self.privacy_receipts = prefix + "privacy-receipts"
        # Internal: profile ids to republish, keyed by id so one owner publishes each.
        self.profile_updates = prefix + "internal.profile-updates"

    def events(self, channel: str) -> str:
        return f"{self.prefix}events.{channel}"

    def channel_of(self, topic: str) -> str:
        """The channel a topic name stands for (its suffix)."""
        return topic[len(self.prefix + "events.") :]
