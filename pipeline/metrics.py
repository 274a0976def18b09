"""Every metric the pipeline exports, on one private registry (served at /metrics).

Names follow Prometheus conventions: base units, ``_total`` for counters,
``_seconds`` for durations. deploy/prometheus/alerts.yml and the Grafana dashboard
query exactly these names.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

# A _created gauge beside every counter and histogram doubled the series count, and no
# panel, alert or rule reads one. The client's switch is for the process: Faust's
# sensors' registry loses them too.
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

EVENTS_CONSUMED = Counter(
    "cdp_events_consumed_total",
    "Events read from channel topics, by outcome (ok, duplicate, deadletter).",
    ["topic", "outcome"],
    registry=REGISTRY,
)
DEADLETTERS = Counter(
    "cdp_deadletters_total",
    "Records sent to the dead-letter topic, by reason.",
    ["reason"],
    registry=REGISTRY,
)
IDENTITIES_DROPPED = Counter(
    "cdp_identities_dropped_total",
    "Identities left out of otherwise valid events.",
    ["namespace", "reason"],
    registry=REGISTRY,
)
BATCH_EVENTS = Histogram(
    "cdp_stitch_batch_events",
    "Events per stitch batch (one Redis call).",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
    registry=REGISTRY,
)
STITCH_DURATION = Histogram(
    "cdp_stitch_duration_seconds",
    "Time to stitch one batch, Redis call included.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
REDIS_DURATION = Histogram(
    "cdp_redis_call_duration_seconds",
    "Latency of Redis operations.",
    ["operation"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
REDIS_ERRORS = Counter(
    "cdp_redis_errors_total", "Failed Redis operations.", ["operation"], registry=REGISTRY
)
BATCH_RETRIES = Counter(
    "cdp_batch_retries_total",
    "Batches whose work failed unexpectedly and was run again (see the log).",
    ["agent"],
    registry=REGISTRY,
)
GRAPH_CHANGES = Counter(
    "cdp_graph_changes_total",
    "Identity graph changes by type (link_added, link_removed, "
    "graphs_merged, graph_split, identity_evicted, identity_deleted, identity_quarantined, "
    "identity_released).",
    ["type"],
    registry=REGISTRY,
)
GRAPH_SIZE = Histogram(
    "cdp_graph_size_identities",
    "Identities in each graph a batch touched.",
    buckets=(1, 2, 3, 5, 8, 13, 20, 30, 40, 50, 75, 100),
    registry=REGISTRY,
)
PROFILES_PUBLISHED = Counter(
    "cdp_profiles_published_total",
    "Records written to the profile topic (document or tombstone).",
    ["kind"],
    registry=REGISTRY,
)
PROFILES_UNPUBLISHED = Counter(
    "cdp_profiles_unpublished_total",
    "Profile documents left off the profile topic (too_large: past a record's limit; the "
    "lookup API still serves them).",
    ["reason"],
    registry=REGISTRY,
)
PROFILES_REPUBLISHED = Counter(
    "cdp_profiles_republished_total",
    "Profiles published again because Redis held another version once the first record "
    "was delivered (another batch or worker changed them meanwhile).",
    registry=REGISTRY,
)
UPDATES_COALESCED = Counter(
    "cdp_profile_updates_coalesced_total",
    "Profile update requests folded into another publication of the same profile.",
    registry=REGISTRY,
)
EVENT_TO_PROFILE = Histogram(
    "cdp_event_to_profile_latency_seconds",
    "From an event (its timestamp, or its ingestion "
    "by the worker) to the publication of its profile.",
    ["clock"],
    buckets=(*_LATENCY_BUCKETS, 120, 300, 900, 3600),
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "cdp_consumer_lag_messages",
    "Messages behind the end of each assigned partition.",
    ["topic", "partition"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "cdp_http_request_duration_seconds",
    "HTTP API latency by route and status.",
    ["route", "method", "status"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
PRIVACY_REQUESTS = Counter(
    "cdp_privacy_requests_total",
    "Privacy requests by action and outcome.",
    ["action", "outcome"],
    registry=REGISTRY,
)
UP = Gauge(
    "cdp_dependency_up",
    "1 while the dependency (kafka, redis) answers, else 0.",
    ["dependency"],
    registry=REGISTRY,
)
READY = Gauge("cdp_ready", "1 while the worker is ready (see /readyz).", registry=REGISTRY)
LAST_EVENT = Gauge(
    "cdp_last_event_timestamp_seconds",
    "Unix time at which the worker last consumed an event.",
    registry=REGISTRY,
)
