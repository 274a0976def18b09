"""Published profile documents against the real broker and Redis (issue 4): merges and
splits, merge policies, the bounded timeline, redelivery, and the API agreeing with the
compacted topic in both output encodings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from cdp_tools.sample import SampleGenerator
from tests.integration.support import (
    T0,
    by_identity,
    envelope,
    ident,
    identity_set,
    live,
    records,
    send,
    settle,
    view,
)

pytestmark = pytest.mark.integration

PROFILE_SCHEMA = jsonschema.Draft202012Validator(
    json.loads(
        (Path(__file__).resolve().parents[2] / "schemas" / "profile.schema.json").read_text(
            encoding="utf-8"
        )
    ),
    format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
)


def published_after(settings: Any, topic: str, offsets: dict[tuple[int, str], int]) -> set[str]:
    """Keys with a record newer than ``offsets`` (partition, key) -> last offset."""
    return {
        r.key
        for r in records(settings, topic)
        if r.key is not None and r.offset > offsets.get((r.partition, r.key), -1)
    }


def last_offsets(settings: Any, topic: str) -> dict[tuple[int, str], int]:
    return {(r.partition, r.key): r.offset for r in records(settings, topic) if r.key}


def test_shared_device_follows_the_person_who_logged_in_last(pipeline_env, start_worker):
    s, topic = pipeline_env.settings, pipeline_env.topics.profiles
    start_worker()
    send(
        s,
        [
            ("mobile", envelope(ident("crm_id", "SD-A"), ident("device_id", "tablet-1"), at=1)),
            ("crm", envelope(ident("crm_id", "SD-B"), at=2, kind="record")),
        ],
    )
    settle(s)
    before = live(view(s, topic))
    a_id = by_identity(before, "crm_id:SD-A")["profile_id"]
    b_id = by_identity(before, "crm_id:SD-B")["profile_id"]
    assert identity_set(before[a_id]) == {"crm_id:SD-A", "device_id:tablet-1"}
    offsets = last_offsets(s, topic)

    send(s, [("mobile", envelope(ident("crm_id", "SD-B"), ident("device_id", "tablet-1"), at=3))])
    settle(s)
    after = view(s, topic)
    assert identity_set(after[a_id]) == {"crm_id:SD-A"}, "A keeps its id, without the device"
    assert identity_set(after[b_id]) == {"crm_id:SD-B", "device_id:tablet-1"}
    assert published_after(s, topic, offsets) >= {a_id, b_id}, "both are republished"
    assert after[a_id]["version"] > before[a_id]["version"]
    assert after[b_id]["version"] > before[b_id]["version"]
    # Each event's data is stored against its primary identity, the CRM id here.
    assert after[a_id]["events"]["count"] == 1
    assert after[b_id]["events"]["count"] == 2


def test_unique_conflict_split_tombstones_the_id_it_ceases(pipeline_env, start_worker):
    s, topic = pipeline_env.settings, pipeline_env.topics.profiles
    start_worker()
    send(s, [("crm", envelope(ident("crm_id", "UC-A"), ident("email", "uc1@example.com"), at=1))])
    settle(s)
    send(s, [("web", envelope(ident("email", "uc2@example.com"), ident("ecid", "UC-K"), at=2))])
    settle(s)
    before = live(view(s, topic))
    first = by_identity(before, "crm_id:UC-A")["profile_id"]
    second = by_identity(before, "email:uc2@example.com")["profile_id"]

    # UC-A now asserts uc2: the newer CRM-email link wins, uc1 is cut loose, and the
    # second graph's identities join the first, whose older id survives.
    send(s, [("crm", envelope(ident("crm_id", "UC-A"), ident("email", "uc2@example.com"), at=3))])
    settle(s)
    after = view(s, topic)
    assert after[second] is None, "the ceased id ends in a tombstone"
    assert identity_set(after[first]) == {"crm_id:UC-A", "email:uc2@example.com", "ecid:UC-K"}
    lone = by_identity(after, "email:uc1@example.com")
    assert lone["profile_id"] not in (first, second), "a ceased id is never reused"
    assert identity_set(lone) == {"email:uc1@example.com"}
    changes = [r.value for r in records(s, pipeline_env.topics.graph_changes)]
    assert {"link_removed", "graphs_merged", "graph_split"} <= {c["type"] for c in changes}


PREFERENCES = [
    (
        "crm",
        envelope(
            ident("crm_id", "MP-1"),
            at=1,
            kind="record",
            attributes={"tier": "gold", "nickname": "Ev", "address": {"city": "Paris"}},
        ),
    ),
    (
        "web",
        envelope(
            ident("ecid", "MP-COOKIE"),
            ident("crm_id", "MP-1"),
            at=5,
            attributes={"tier": "bronze", "nickname": None, "address": {"city": "Lyon"}},
        ),
    ),
    ("kiosk", envelope(ident("crm_id", "MP-1"), at=9, attributes={"tier": "kiosk"})),
]
BY_TIME = {"tier": "kiosk", "address": {"city": "Lyon"}}
BY_SOURCE = {"tier": "gold", "nickname": "Ev", "address": {"city": "Paris"}}


@pytest.mark.parametrize(
    ("default", "on_topic", "other", "other_view"),
    [("timestamp", BY_TIME, "source_precedence", BY_SOURCE)],
)
def test_merge_policy_default_and_per_request(
    pipeline_env, start_worker, default, on_topic, other, other_view
):
    s = pipeline_env.settings
    worker = start_worker(CDP_MERGE_POLICY=default)
    send(s, PREFERENCES)
    settle(s)
    doc = by_identity(view(s, pipeline_env.topics.profiles), "crm_id:MP-1")
    assert doc["attributes"] == on_topic
    status, answer = worker.get(f"/v1/profiles/{doc['profile_id']}")
    assert (status, answer["attributes"]) == (200, on_topic)
    status, answer = worker.get(f"/v1/profiles?namespace=ecid&id=MP-COOKIE&merge_policy={other}")
    assert (status, answer["attributes"]) == (200, other_view)
    # Same data, other policy: no reprocessing, and the version is the same document's.
    assert answer["version"] == doc["version"]


def test_source_precedence_as_the_workers_default(pipeline_env, start_worker):
    s = pipeline_env.settings
    worker = start_worker(
        CDP_MERGE_POLICY="source_precedence", CDP_SOURCE_PRECEDENCE="crm,loyalty,web"
    )
    send(s, PREFERENCES)
    settle(s)
    doc = by_identity(view(s, pipeline_env.topics.profiles), "crm_id:MP-1")
    assert doc["attributes"] == BY_SOURCE
    status, answer = worker.get("/v1/profiles?namespace=crm_id&id=MP-1&merge_policy=timestamp")
    assert (status, answer["attributes"]) == (200, BY_TIME)
    assert worker.get("/v1/profiles?namespace=crm_id&id=MP-1")[1]["attributes"] == BY_SOURCE


def test_timeline_is_bounded_and_counts_exact_under_redelivery(pipeline_env, start_worker):
    s = pipeline_env.settings
    worker = start_worker(CDP_RECENT_EVENTS="5")
    events = [
        (
            ("web", "mobile", "pos")[i % 3],
            envelope(
                ident("crm_id", "TL-1"),
                ident("ecid", f"TL-COOKIE-{i % 4}"),
                at=i,
                event_id=f"tl-{i:02d}",
                event={"type": f"t{i % 2}"},
            ),
        )
        for i in range(12)
    ]
    send(s, events)
    send(s, events[::-1])  # the same events again, in another order
    settle(s)
    doc = by_identity(view(s, pipeline_env.topics.profiles), "crm_id:TL-1")
    assert doc["events"]["count"] == 12
    assert doc["events"]["by_channel"] == {"mobile": 4, "pos": 4, "web": 4}
    assert doc["events"]["by_type"] == {"t0": 6, "t1": 6}
    assert [e["event_id"] for e in doc["events"]["recent"]] == [
        f"tl-{i:02d}" for i in (11, 10, 9, 8, 7)
    ]
    assert worker.get(f"/v1/profiles/{doc['profile_id']}") == (200, doc)


@pytest.mark.parametrize("encoding", ["msgpack", "json"])
def test_api_and_compacted_topic_agree_after_quiescence(pipeline_env, start_worker, encoding):
    s, topic = pipeline_env.settings, pipeline_env.topics.profiles
    worker = start_worker(CDP_OUTPUT_ENCODING=encoding)
    send(s, SampleGenerator(25, seed=11, start_ms=T0).events())
    settle(s)
    published = records(s, topic)
    raw = [r.raw for r in records(s, topic, decoded=False) if r.raw is not None]
    assert raw and all((v[:1] == b"{") == (encoding == "json") for v in raw)
    for r in published:  # every document ever published, not only the latest
        if r.value is not None:
            PROFILE_SCHEMA.validate(r.value)
            assert r.value["profile_id"] == r.key
    latest = view(s, topic)
    tombstoned = [pid for pid, doc in latest.items() if doc is None]
    assert len(live(latest)) >= 20
    assert tombstoned, "the sample merges graphs, so some ids must have ceased"
    for pid, doc in live(latest).items():
        assert worker.get(f"/v1/profiles/{pid}") == (200, doc), pid
        first = doc["identities"][0]
        query = f"/v1/profiles?namespace={first['namespace']}&id={first['id']}"
        assert worker.get(query) == (200, doc), pid
    for pid in tombstoned:
        status, body = worker.get(f"/v1/profiles/{pid}")
        assert status == 404 and "error" in body, pid
