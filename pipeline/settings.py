"""Every setting is an environment variable; this table is the single list of them.

README's configuration table is generated from ``VARIABLES`` (``cdp config``).
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from pipeline.model import POLICIES

ENCODINGS = ("msgpack", "json")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def listed(choices: tuple[str, ...]) -> str:
    """'a, b or c'."""
    return ", ".join(choices[:-1]) + f" or {choices[-1]}"


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
        "Identity configuration replacing schemas/identity.default.toml: a TOML file's path, or "
        "a packaged configuration's name (shared-devices: the default with the opt-in "
        "shared-device rule; `cdp config identity --list`).",
    ),
    Variable("CDP_TOPIC_PREFIX", "cdp.", "Prefix of every topic the pipeline reads or owns."),
    Variable("CDP_TOPIC_PARTITIONS", "4", "Partitions of the topics the pipeline creates."),
    Variable("CDP_TOPIC_REPLICATION", "1", "Replication factor of the topics it creates."),
    Variable(
        "CDP_APP_ID",
        "cdp-pipeline",
        "Kafka consumer group / Faust app id; workers with the same id share the partitions "
        "(give each deployment on one Kafka its own, whatever its CDP_TOPIC_PREFIX).",
    ),
    Variable(
        "CDP_HTTP_HOST",
        "127.0.0.1",
        "Address the worker's HTTP API binds to (0.0.0.0 or :: for every interface).",
    ),
    Variable("CDP_HTTP_PORT", "6066", "Port of the worker's HTTP API (one per worker)."),
    Variable(
        "CDP_API_TOKEN",
        "",
        "If set, every HTTP route but /healthz, /readyz, /metrics and the viewer's static "
        "files under /ui/ needs 'Authorization: Bearer <token>'.",
    ),
    Variable("CDP_OUTPUT_ENCODING", "msgpack", f"Encoding of output records: {listed(ENCODINGS)}."),
    Variable("CDP_MERGE_POLICY", POLICIES[0], f"Default merge policy: {listed(POLICIES)}."),
    Variable(
        "CDP_SOURCE_PRECEDENCE",
        "crm,loyalty,pos,callcenter,mobile,web",
        "Channel order for the source_precedence policy, strongest first (channel names, "
        "[a-z0-9_-]+, at least one, each once; an unlisted channel ranks after every listed "
        "one).",
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
        "CDP_DEDUPE_TTL_S",
        "604800",
        "How long an event_id or a privacy request is remembered for redelivery (seconds).",
    ),
    Variable("CDP_MAX_EVENT_BYTES", "1048576", "Largest accepted event value (bytes)."),
    Variable("CDP_STATE_DIR", ".cdp", "Where `cdp stack` keeps jars, data, logs and pids."),
    Variable("CDP_LOG_FORMAT", "text", f"{listed(LOG_FORMATS)}."),
    Variable("CDP_LOG_LEVEL", "info", f"{listed(LOG_LEVELS)}."),
    Variable("CDP_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", f"{listed(SECURITY_PROTOCOLS)}."),
    Variable("CDP_KAFKA_SASL_MECHANISM", "PLAIN", f"{listed(SASL_MECHANISMS)}."),
    Variable("CDP_KAFKA_SASL_USERNAME", "", "SASL user name."),
    Variable("CDP_KAFKA_SASL_PASSWORD", "", "SASL password."),
    Variable("CDP_KAFKA_SSL_CAFILE", "", "CA bundle for SSL/SASL_SSL."),
    Variable("CDP_KAFKA_REQUEST_TIMEOUT_S", "30", "Give up on a silent broker after this long."),
)

_DEFAULTS = {v.name: v.default for v in VARIABLES}


def env(name: str) -> str:
    """The variable's value, or its documented default."""
    return os.environ.get(name, _DEFAULTS[name])


N = TypeVar("N", int, float)

# What redis-py's from_url and pipeline.identity.connect take; redis-py's own refusal of
# another came out of a worker as a traceback.
REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")

# Kafka's legal topic characters: a prefix of others names no topic a worker can create.
_TOPIC_PREFIX = re.compile(r"[A-Za-z0-9._-]*")
# A channel name (CONTRACT 2): the suffix of its topic, the `channel` of its events.
CHANNEL = re.compile(r"[a-z0-9_-]+")


def _number(name: str, kind: Callable[[str], N], low: N, high: N | None = None) -> N:
    """A numeric setting within its range, refused at start with the variable's name
    rather than deep inside Faust, aiokafka or a Redis command."""
    raw = env(name)
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"from {low} to {high}"
        raise ValueError(f"{name} must be {bound}, not {raw!r}")
    return value


def _channels(name: str) -> tuple[str, ...]:
    """A comma-separated list of channel names: one that no event can carry (CRM) would
    rank nothing, so it is refused rather than ignored; so is a list of none, as an empty
    CDP_KAFKA_BOOTSTRAP is (empty items between commas are skipped in both)."""
    value = env(name)
    channels = tuple(c.strip() for c in value.split(",") if c.strip())
    if not channels:
        raise ValueError(f"{name} must name at least one channel, not {value!r}")
    for index, channel in enumerate(channels):
        if not CHANNEL.fullmatch(channel):
            raise ValueError(f"{name} lists channels, each [a-z0-9_-]+, not {channel!r}")
        if channel in channels[:index]:  # which of its places was meant is a guess
            raise ValueError(f"{name} lists {channel!r} twice")
    return channels


def _choice(name: str, choices: tuple[str, ...], fold: Callable[[str], str] = str) -> str:
    """A setting that is one of ``choices`` (after ``fold``)."""
    value = fold(env(name))
    if value not in choices:
        raise ValueError(f"{name} must be {listed(choices)}, not {env(name)!r}")
    return value


def _redis_url() -> str:
    url = env("CDP_REDIS_URL")
    if url.partition("://")[0] not in REDIS_SCHEMES:
        schemes = listed(tuple(f"{scheme}://" for scheme in REDIS_SCHEMES))
        raise ValueError(f"CDP_REDIS_URL must start with {schemes}, not {url!r}")
    return url


def _bootstrap() -> str:
    """host[:port],...: aiokafka failed on these only once connecting, one with a bad
    port inside int()."""
    value = env("CDP_KAFKA_BOOTSTRAP")
    servers = [server.strip() for server in value.split(",") if server.strip()]
    if not servers:
        raise ValueError(f"CDP_KAFKA_BOOTSTRAP must name at least one host:port, not {value!r}")
    for server in servers:
        host, colon, port = server.rpartition(":")
        if colon and not host.endswith("]") and ":" in host:
            continue  # a bare IPv6 address: aiokafka takes it with its default port
        if colon and not port.isdigit():
            raise ValueError(f"CDP_KAFKA_BOOTSTRAP has a bad port in {server!r}")
    return value


def _app_id() -> str:
    """Faust requires one, and it prefixes the worker's temporary directory's name."""
    app_id = env("CDP_APP_ID")
    if not app_id.strip():
        raise ValueError("CDP_APP_ID must not be empty")
    if "/" in app_id:
        raise ValueError(f"CDP_APP_ID may not hold '/', not {app_id!r}")
    return app_id


def _http_host() -> str:
    """An address to bind: empty is what asyncio reads as every interface, which
    nobody setting it empty (for the default, loopback) means."""
    host = env("CDP_HTTP_HOST")
    if not host.strip():
        raise ValueError(
            f"CDP_HTTP_HOST must name an address (0.0.0.0 or :: for every interface), not {host!r}"
        )
    return host


def _ca_file(protocol: str) -> str:
    """The CA bundle, loaded once here when TLS will use it: a missing or unreadable file
    otherwise failed deep inside the Kafka client's set-up."""
    path = env("CDP_KAFKA_SSL_CAFILE")
    if path and "SSL" in protocol:
        try:
            ssl.create_default_context(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ValueError(
                f"CDP_KAFKA_SSL_CAFILE must be a readable PEM CA bundle; {path!r}: {reason}"
            ) from None
    return path


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
        """Every setting, checked: a value out of its range or choices is a ValueError
        naming the variable."""
        prefix = env("CDP_TOPIC_PREFIX")
        if not _TOPIC_PREFIX.fullmatch(prefix):
            raise ValueError(
                f"CDP_TOPIC_PREFIX may hold only letters, digits, '.', '_' and '-', not {prefix!r}"
            )
        protocol = _choice("CDP_KAFKA_SECURITY_PROTOCOL", SECURITY_PROTOCOLS)
        return cls(
            kafka_bootstrap=_bootstrap(),
            redis_url=_redis_url(),
            redis_min_replicas=_number("CDP_REDIS_MIN_REPLICAS", int, 0),
            # WAIT with a timeout of 0 blocks for ever.
            redis_replica_timeout_ms=_number("CDP_REDIS_REPLICA_TIMEOUT_MS", int, 1),
            identity_config=env("CDP_IDENTITY_CONFIG"),
            topic_prefix=prefix,
            topic_partitions=_number("CDP_TOPIC_PARTITIONS", int, 1),
            topic_replication=_number("CDP_TOPIC_REPLICATION", int, 1),
            app_id=_app_id(),
            http_host=_http_host(),
            http_port=_number("CDP_HTTP_PORT", int, 1, 65535),
            api_token=env("CDP_API_TOKEN"),
            output_encoding=_choice("CDP_OUTPUT_ENCODING", ENCODINGS),
            merge_policy=_choice("CDP_MERGE_POLICY", POLICIES),
            source_precedence=_channels("CDP_SOURCE_PRECEDENCE"),
            recent_events=_number("CDP_RECENT_EVENTS", int, 0),
            batch_size=_number("CDP_BATCH_SIZE", int, 1),
            dedupe_ttl_s=_number("CDP_DEDUPE_TTL_S", int, 1),
            max_event_bytes=_number("CDP_MAX_EVENT_BYTES", int, 1),
            state_dir=env("CDP_STATE_DIR"),
            log_format=_choice("CDP_LOG_FORMAT", LOG_FORMATS),
            log_level=_choice("CDP_LOG_LEVEL", LOG_LEVELS, str.lower),
            kafka_security_protocol=protocol,
            kafka_sasl_mechanism=_choice("CDP_KAFKA_SASL_MECHANISM", SASL_MECHANISMS),
            kafka_sasl_username=env("CDP_KAFKA_SASL_USERNAME"),
            kafka_sasl_password=env("CDP_KAFKA_SASL_PASSWORD"),
            kafka_ssl_cafile=_ca_file(protocol),
            kafka_request_timeout_s=_number("CDP_KAFKA_REQUEST_TIMEOUT_S", float, 0.001),
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
