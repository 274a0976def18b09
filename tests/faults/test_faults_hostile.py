"""Issue 6.5: 100,000 hostile inputs among valid events: no crash, every bad one in the
dead-letter topic with its reason, dropped identities counted, every valid event kept."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.ingest import REJECT_REASONS
from pipeline.settings import Topics
from tests.faults.hostile import MAX_BYTES, expected_drops, generate
from tests.faults.support import (
    CHANNELS,
    CONFIG,
    FAULTS,
    Run,
    alive,
    check_end_state,
    ensure_topics,
    expected_state,
    fault_size,
    log_has_traceback,
    metric,
    produce,
    settle,
)
from tests.integration.support import records

# Its workload floods Redis: on a Redis of its own (tests/faults/conftest.py).
pytestmark = [*FAULTS, pytest.mark.own_stack("redis")]

BAD = fault_size(100_000)
GOOD = fault_size(8_000)


def test_hostile_input_never_crashes(pipeline_env, start_worker):
    s = pipeline_env.settings
    topics = Topics(s.topic_prefix)
    run = Run()
    items = generate(run.seed, BAD, GOOD)
    channels = [run.rng.choice(CHANNELS) for _ in items]
    good = [(c, item.envelope) for c, item in zip(channels, items, strict=True) if not item.reject]
    expected = expected_state(good, s.topic_prefix)
    assert expected.rejected == 0
    ensure_topics(s)
    worker = start_worker(CDP_MAX_EVENT_BYTES=str(MAX_BYTES), CDP_LOG_LEVEL="error")
    sent = produce(
        s,
        [(topics.events(c), item.value, None) for c, item in zip(channels, items, strict=True)],
    )
    settled_s = settle(s, timeout_s=300)
    assert alive(worker), "the worker died on hostile input"
    assert not log_has_traceback(worker), worker.tail()

    must_reject = {
        (m.topic, m.partition, m.offset) for m, item in zip(sent, items, strict=True) if item.reject
    }
    dead = records(s, topics.deadletter, decoded=False)
    reasons = Counter(r.headers.get("cdp-reason", b"").decode() for r in dead)
    assert set(reasons) <= set(REJECT_REASONS), reasons
    origins = [
        (
            r.headers["cdp-source-topic"].decode(),
            int(r.headers["cdp-source-partition"]),
            int(r.headers["cdp-source-offset"]),
        )
        for r in dead
    ]
    assert len(origins) == len(set(origins)), "a bad input was dead-lettered twice"
    assert set(origins) == must_reject, (
        f"{len(set(origins) - must_reject)} dead letters were valid events, "
        f"{len(must_reject - set(origins))} bad inputs are missing"
    )

    dropped = Counter()
    for labels, value in metric(worker, "cdp_identities_dropped_total").items():
        fields = dict(part.split("=", 1) for part in labels.strip("{}").split(","))
        namespace = fields["namespace"].strip('"')
        # Unknown namespaces may be labelled by name (bounded) or as "other": sum them.
        label = namespace if namespace in CONFIG.namespaces else "other"
        dropped[(label, fields["reason"].strip('"'))] += int(value)
    assert dropped == expected_drops(items)

    summary = check_end_state(s, expected)
    assert alive(worker)
    run.report(
        "hostile",
        f"bad={len(must_reject)} valid={len(good)} dead letters={len(dead)} "
        f"reasons={dict(reasons.most_common())} dropped identities={sum(dropped.values())}",
        summary,
        settled_s,
    )
