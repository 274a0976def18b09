"""The Grafana dashboard: its shape, its metric names, and that every panel returns data."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from cdp_tools.stack.proc import free_port

try:
    import dashboard_check as dc
except ImportError:  # pytest --import-mode=importlib, or imported from elsewhere
    from tests.ops import dashboard_check as dc

from pipeline import metrics

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "cdp.json"
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"


def _need_prometheus() -> None:
    if dc.prometheus_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed (apt-get install prometheus)")
        pytest.skip("prometheus is not installed")


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


# --- static checks ------------------------------------------------------------------------


def test_dashboard_shape_and_datasource() -> None:
    dash = _dashboard()
    assert dash["uid"] == "cdp-pipeline"
    assert 36 <= dash["schemaVersion"] <= 41
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    uids = {d["uid"] for d in datasources["datasources"]}
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "cdp.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"

    panels = list(dc.iter_panels(dash["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        assert panel["datasource"]["uid"] in uids, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_dashboard_references_only_exported_metrics() -> None:
    known = dc.known_metric_names()
    queries = dc.panel_queries(_dashboard())
    assert queries
    problems = {
        f"{title} {ref}": sorted(unknown)
        for title, ref, expr in queries
        if (unknown := dc.unknown_metric_names(expr, known))
    }
    assert not problems, f"metric names not in pipeline.metrics: {problems}"
    used = set().union(*(dc.metric_names_in(e) for _, _, e in queries))
    families = {f.name for f in metrics.REGISTRY.collect()}
    unused = {f for f in families if not any(u.startswith(f) for u in used)}
    assert not unused, f"metrics with no panel: {sorted(unused)}"


def test_metric_name_extraction() -> None:
    expr = (
        'sum by (le, clock) (rate(cdp_x_bucket{instance=~"$instance"}[$__rate_interval])) '
        'or on() vector(0) / ignoring(a) up{job="w"} + label_replace(foo, "a", "$1", "b", `c`)'
    )
    assert dc.metric_names_in(expr) == {"cdp_x_bucket", "up", "foo"}


def test_variable_substitution() -> None:
    variables = dc.dashboard_variables(_dashboard())
    expr = 'rate(x{instance=~"$instance", a="${instance}"}[$__rate_interval]) + "$1"'
    assert dc.substitute(expr, variables) == 'rate(x{instance=~".*", a=".*"}[1m]) + "$1"'
    with pytest.raises(KeyError):
        dc.substitute("rate(x[$nope])", variables)


# --- a simulated worker ---------------------------------------------------------------------

CHANNELS = ("web", "mobile", "pos", "crm", "loyalty", "callcenter")


def _tick(n: int) -> None:
    """One slice of a worker's life: a batch of events stitched and published."""
    for i, channel in enumerate(CHANNELS):
        topic = f"cdp.events.{channel}"
        metrics.EVENTS_CONSUMED.labels(topic, "ok").inc(3 + i)
        metrics.CONSUMER_LAG.labels(topic, "0").set((n * 7 + i) % 50)
        metrics.CONSUMER_LAG.labels(topic, "1").set((n * 3 + i) % 20)
    metrics.BATCH_EVENTS.observe(20 + n % 30)
    metrics.STITCH_DURATION.observe(0.004 + (n % 10) / 1000)
    metrics.REDIS_DURATION.labels("stitch").observe(0.002 + (n % 5) / 1000)
    metrics.REDIS_DURATION.labels("get_profile").observe(0.001)
    metrics.GRAPH_CHANGES.labels("link_added").inc(4)
    metrics.GRAPH_SIZE.observe(1 + n % 6)
    metrics.PROFILES_PUBLISHED.labels("document").inc(10)
    metrics.UPDATES_COALESCED.inc(2)
    metrics.PROFILES_REPUBLISHED.inc()
    metrics.PROFILES_UNPUBLISHED.labels("too_large").inc()
    metrics.EVENT_TO_PROFILE.labels("ingest").observe(0.02 + (n % 10) / 100)
    metrics.EVENT_TO_PROFILE.labels("event_time").observe(0.5 + (n % 10) / 10)
    metrics.UP.labels("kafka").set(1)
    metrics.UP.labels("redis").set(1)
    metrics.READY.set(1)
    metrics.LAST_EVENT.set(time.time())


def _tick_troubles(n: int) -> None:
    """What only happens when something goes wrong, or on the rarer paths."""
    metrics.EVENTS_CONSUMED.labels("cdp.events.web", "duplicate").inc()
    metrics.EVENTS_CONSUMED.labels("cdp.events.web", "deadletter").inc()
    metrics.DEADLETTERS.labels("undecodable").inc()
    metrics.IDENTITIES_DROPPED.labels("email", "blocked_value").inc()
    for kind in (
        "graphs_merged",
        "graph_split",
        "identity_evicted",
        "identity_quarantined",
        "link_removed",
        "identity_deleted",
        "identity_released",
    ):
        metrics.GRAPH_CHANGES.labels(kind).inc()
    metrics.REDIS_ERRORS.labels("stitch").inc()
    metrics.BATCH_RETRIES.labels("publish").inc()
    metrics.PROFILES_PUBLISHED.labels("tombstone").inc()
    metrics.HTTP_DURATION.labels("/v1/profiles", "GET", "200").observe(0.003)
    metrics.HTTP_DURATION.labels("/v1/profiles", "GET", "404").observe(0.002)
    metrics.HTTP_DURATION.labels("/metrics", "GET", "200").observe(0.001)
    metrics.PRIVACY_REQUESTS.labels("delete_identity", "deleted").inc()


# Only what a healthy worker that consumed events has exported: nothing went wrong, no HTTP
# request and no privacy request yet. Panels must still show a series.
_HEALTHY_FAMILIES = {
    "cdp_events_consumed",
    "cdp_stitch_batch_events",
    "cdp_stitch_duration_seconds",
    "cdp_redis_call_duration_seconds",
    "cdp_graph_changes",
    "cdp_graph_size_identities",
    "cdp_profiles_published",
    "cdp_profile_updates_coalesced",
    "cdp_profiles_republished",
    "cdp_event_to_profile_latency_seconds",
    "cdp_consumer_lag_messages",
    "cdp_dependency_up",
    "cdp_ready",
    "cdp_last_event_timestamp_seconds",
}
_HEALTHY_LABELS = {"outcome": {"ok"}, "type": {"link_added"}, "kind": {"document"}}


class _HealthyView:
    """A collector showing only the healthy subset of pipeline.metrics.REGISTRY."""

    def collect(self) -> Iterator[Metric]:
        for family in metrics.REGISTRY.collect():
            if family.name not in _HEALTHY_FAMILIES:
                continue
            copy = Metric(family.name, family.documentation, family.type, family.unit)
            copy.samples = [s for s in family.samples if _healthy(s)]
            yield copy


def _healthy(sample: Sample) -> bool:
    return all(
        k not in sample.labels or sample.labels[k] in ok for k, ok in _HEALTHY_LABELS.items()
    )


@contextmanager
def _simulated_worker(registry: CollectorRegistry, tick: Callable[[int], None]) -> Iterator[str]:
    """Serve ``registry`` on a free 127.0.0.1 port while a thread keeps ``tick``-ing."""
    stop = threading.Event()

    def run() -> None:
        n = 0
        while not stop.is_set():
            tick(n)
            n += 1
            stop.wait(0.1)

    tick(0)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    ticker = threading.Thread(target=run, daemon=True)
    ticker.start()
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        stop.set()
        ticker.join(timeout=5)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_every_panel_returns_data_from_a_healthy_worker(tmp_path: Path) -> None:
    """Two workers that only did the happy path: no dead letter, no HTTP, no privacy."""
    _need_prometheus()
    view = CollectorRegistry(auto_describe=False)
    view.register(_HealthyView())  # type: ignore[arg-type]
    with _simulated_worker(view, _tick) as url1, _simulated_worker(view, _tick) as url2:
        problems = dc.check_dashboard([url1, url2], DASHBOARD, tmp_path, require_finite=True)
    assert problems == []


def test_every_panel_returns_data_when_every_metric_is_set(tmp_path: Path) -> None:
    _need_prometheus()

    def tick(n: int) -> None:
        _tick(n)
        _tick_troubles(n)

    with _simulated_worker(metrics.REGISTRY, tick) as url:
        exported = {s.name for f in metrics.REGISTRY.collect() for s in f.samples}
        problems = dc.check_dashboard(
            [url], DASHBOARD, tmp_path, require_finite=True, check_labels=True
        )
    # The simulation touched every metric the pipeline defines.
    missing = dc.known_metric_names() - exported
    assert not missing, f"simulation leaves metrics unset: {sorted(missing)}"
    assert problems == []


def test_check_dashboard_reports_broken_queries(tmp_path: Path) -> None:
    """The checker itself: a misspelt metric and a syntax error are both reported."""
    _need_prometheus()
    dash = _dashboard()
    dash["panels"] = [
        {
            "type": "timeseries",
            "title": "typo",
            "id": 1,
            "targets": [
                {"refId": "A", "expr": "sum(rate(cdp_events_consumd_total[$__rate_interval]))"}
            ],
        },
        {
            "type": "timeseries",
            "title": "syntax",
            "id": 2,
            "targets": [{"refId": "A", "expr": "sum(rate(cdp_ready[1m]"}],
        },
        {
            "type": "timeseries",
            "title": "fine",
            "id": 3,
            "targets": [{"refId": "A", "expr": 'cdp_ready{instance=~"$instance"}'}],
        },
    ]
    path = tmp_path / "dash.json"
    path.write_text(json.dumps(dash))
    with _simulated_worker(metrics.REGISTRY, _tick) as url:
        problems = dc.check_dashboard([url], path, tmp_path / "prom", scrapes=2)
    assert len(problems) == 2, problems
    assert "'typo'" in problems[0] and "no series" in problems[0]
    assert "'syntax'" in problems[1] and "error" in problems[1]


def test_check_labels_reports_labels_and_values_no_series_has(tmp_path: Path) -> None:
    """A renamed label or label value still returns data where a query ends in
    `or on() vector(0)`, or groups by nothing: the label check sees both."""
    _need_prometheus()
    dash = _dashboard()
    retries = "rate(cdp_batch_retries_total[1m])"
    dash["panels"] = [
        {
            "type": "timeseries",
            "title": "grouped by a label the metric lacks",
            "id": 1,
            "targets": [
                {"refId": "A", "expr": f"sum by (agnt) ({retries})", "legendFormat": "{{agnt}}"}
            ],
        },
        {
            "type": "timeseries",
            "title": "a value no series has",
            "id": 2,
            "targets": [
                {
                    "refId": "A",
                    "expr": 'sum(rate(cdp_graph_changes_total{type="graph_merged"}[1m])) '
                    "or on() vector(0)",
                }
            ],
        },
        {
            "type": "timeseries",
            "title": "a matcher on a label the metric lacks",
            "id": 3,
            "targets": [
                {"refId": "A", "expr": 'sum(rate(cdp_batch_retries_total{worker!="x"}[1m]))'}
            ],
        },
        {
            "type": "timeseries",
            "title": "fine",
            "id": 4,
            "targets": [
                {
                    "refId": "A",
                    "expr": "sum by (type, instance) (label_replace(rate(cdp_graph_changes_total"
                    '{type="graphs_merged"}[1m]), "what", "$1", "type", "(.*)"))',
                    "legendFormat": "{{what}} {{instance}}",
                }
            ],
        },
    ]
    path = tmp_path / "dash.json"
    path.write_text(json.dumps(dash))

    def tick(n: int) -> None:
        _tick(n)
        _tick_troubles(n)

    with _simulated_worker(metrics.REGISTRY, tick) as url:
        problems = dc.check_dashboard(
            [url], path, tmp_path / "prom", scrapes=2, rule_files=(), check_labels=True
        )
    assert len(problems) == 3, problems
    assert "'grouped by a label the metric lacks'" in problems[0] and "'agnt'" in problems[0]
    assert "'a value no series has'" in problems[1] and 'type="graph_merged"' in problems[1]
    assert "'a matcher on a label the metric lacks'" in problems[2] and "'worker'" in problems[2]


# --- against a real worker ------------------------------------------------------------------


@pytest.mark.integration
def test_every_panel_returns_data_from_a_real_worker(
    worker_metrics_url: str | list[str], tmp_path: Path
) -> None:
    """``worker_metrics_url`` (tests/conftest.py): the /metrics URL(s) of a running worker
    that has processed events."""
    _need_prometheus()
    urls = [worker_metrics_url] if isinstance(worker_metrics_url, str) else worker_metrics_url
    problems = dc.check_dashboard(list(urls), DASHBOARD, tmp_path, check_labels=True)
    assert problems == []
