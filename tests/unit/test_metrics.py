"""The /metrics exposition: one series per counter and histogram part, no _created."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

from pipeline import metrics


def test_no_created_series() -> None:
    """prometheus_client adds a _created gauge to every counter and histogram by default,
    doubling the series count: nothing in deploy/ reads them."""
    metrics.DEADLETTERS.labels(reason="bad_timestamp").inc()
    metrics.STITCH_DURATION.observe(0.01)
    assert b"_created" not in generate_latest(metrics.REGISTRY)


def test_no_created_series_on_another_registry() -> None:
    """The switch is the client's, for the process: Faust's sensors' registry too."""
    registry = CollectorRegistry()
    Counter("faust_like_total", "A counter made after pipeline.metrics.", registry=registry).inc()
    assert b"_created" not in generate_latest(registry)
