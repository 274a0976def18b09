"""Privacy deletes against the real broker and Redis (CONTRACT 4.6, issue 4): receipts on
cdp.privacy-receipts, the data gone from the profile, tombstones, replays that cannot
bring an identity back, and the receipt and graph-change records fitting their schemas."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from cdp_tools.ops import privacy_request
from cdp_tools.workerproc import WorkerProcess
from tests.integration.support import (
    by_identity,
    envelope,
    ident,
    identity_set,
    live,
    reasons,
    records,
    send,
    send_raw,
    settle,
    view,
)

pytestmark = pytest.mark.integration
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


RECEIPT = validator("privacy-receipt.schema.json")
CHANGE = validator("graph-change.schema.json")
ALREADY = "already deleted by an earlier privacy request"
NOT_FOUND = "no such identity in the graph"


def request(settings: Any, action: str, namespace: str, value: str) -> tuple[dict[str, Any], float]:
    """Send a request; its receipt and seconds from produce to the receipt on the topic."""
    body = {
        "request_id": f"t-{uuid.uuid4()}",
        "action": action,
        "namespace": namespace,
        "id": value,
    }
    sent_ms = time.time() * 1000
    receipt = asyncio.run(privacy_request(settings, body, 60))
    assert receipt is not None, "no receipt within a minute"
    (record,) = [
        r
        for r in records(settings, settings.topic_prefix + "privacy-receipts")
        if r.key == body["request_id"]
    ]
    return receipt, (record.timestamp_ms - sent_ms) / 1000


def http_delete(worker: WorkerProcess, query: str) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(f"{worker.url}/v1/identities?{query}", method="DELETE")
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


PERSON = [
    (
        "crm",
        envelope(
            ident("crm_id", "PD-1", True),
            ident("email", "pd@example.com"),
            at=1,
            kind="record",
            attributes={"firstName": "Pat"},
        ),
    ),
    (
        "web",
        envelope(
            ident("email", "pd@example.com", True),
            ident("ecid", "PD-COOKIE"),
            at=2,
            attributes={"newsletter": True},
            event={"type": "web.subscribe"},
        ),
    ),
    ("web", envelope(ident("email", "pd@example.com"), at=3, event={"type": "web.open"})),
]


def renumbered(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The same events as a producer re-sending them from its own store would: new ids."""
    return [(ch, {**e, "event_id": str(uuid.uuid4())}) for ch, e in events]


def test_delete_identity_by_topic_removes_it_and_replays_leave_it_deleted(
    pipeline_env, start_worker
):
    s, topics = pipeline_env.settings, pipeline_env.topics
    worker = start_worker()
    send(s, PERSON)
    settle(s)
    before = by_identity(view(s, topics.profiles), "crm_id:PD-1")
    assert before["attributes"] == {"firstName": "Pat", "newsletter": True}
    assert before["events"]["count"] == 3

    receipt, seconds = request(s, "delete_identity", "email", " PD@Example.com ")
    print(f"\nprivacy delete_identity: request produced -> receipt on topic: {seconds:.3f}s")
    assert seconds < 60
    RECEIPT.validate(receipt)
    assert receipt["status"] == "deleted"
    assert receipt["deleted_identities"] == ["email:pd@example.com"]
    settle(s)
    profiles = view(s, topics.profiles)
    after = by_identity(profiles, "crm_id:PD-1")
    assert after["profile_id"] == before["profile_id"]
    assert identity_set(after) == {"crm_id:PD-1"}, "the cookie hung off the email only"
    assert after["attributes"] == {"firstName": "Pat"}, "its data went with it"
    assert after["events"]["count"] == 1
    cookie = by_identity(profiles, "ecid:PD-COOKIE")
    assert cookie["attributes"] == {} and cookie["events"]["count"] == 0
    assert set(receipt["affected_profile_ids"]) == {after["profile_id"], cookie["profile_id"]}

    send(s, PERSON)  # redelivered as they were
    send(s, renumbered(PERSON))  # and re-sent with new ids
    settle(s)
    replayed = live(view(s, topics.profiles))
    assert all("email:pd@example.com" not in identity_set(d) for d in replayed.values())
    assert by_identity(replayed, "crm_id:PD-1")["attributes"] == {"firstName": "Pat"}
    assert worker.get("/v1/profiles?namespace=email&id=pd@example.com")[0] == 404
    assert reasons(s, topics.deadletter)["all_identities_deleted"] == 1


def test_a_redelivered_request_gets_the_first_receipt_and_its_time(pipeline_env, start_worker):
    # A request delivered again (a crash before its offset was committed, a requester
    # that re-sends) changes nothing; its receipt, the last of its key on the compacted
    # topic, must still say when the identity was deleted, not when it was asked again.
    s, topics = pipeline_env.settings, pipeline_env.topics
    start_worker()
    send(s, PERSON[:1])
    settle(s)
    body = {"request_id": "again-1", "action": "delete_identity", "namespace": "crm_id"}
    value = json.dumps({**body, "id": "PD-1"}).encode()
    for _ in range(2):
        send_raw(s, topics.privacy_requests, [value])
        settle(s)
        time.sleep(0.05)  # a later clock reading for the second delivery
    first, second = [r.value for r in records(s, topics.privacy_receipts)]
    assert first["status"] == second["status"] == "deleted"
    assert first["deleted_identities"] == second["deleted_identities"] == ["crm_id:PD-1"]
    assert second["completed_at"] == first["completed_at"]
    assert second["received_at"] > first["received_at"]  # this delivery's


def test_delete_identity_over_http_tombstones_a_profile_that_ceases(pipeline_env, start_worker):
    s, topics = pipeline_env.settings, pipeline_env.topics
    worker = start_worker()
    send(s, [("pos", envelope(ident("loyalty_id", "PH-1"), at=1, attributes={"points": 5}))])
    settle(s)
    pid = by_identity(view(s, topics.profiles), "loyalty_id:PH-1")["profile_id"]

    started = time.monotonic()
    status, receipt = http_delete(worker, "namespace=loyalty_id&id=ph-1&request_id=http-ph-1")
    assert status == 200
    RECEIPT.validate(receipt)
    assert receipt["ceased_profile_ids"] == [pid]
    assert receipt["affected_profile_ids"] == []
    settle(s)
    on_topic = [r for r in records(s, topics.privacy_receipts) if r.key == "http-ph-1"]
    print(f"\nprivacy DELETE /v1/identities -> settled: {time.monotonic() - started:.3f}s")
    assert [r.value for r in on_topic] == [receipt]
    assert view(s, topics.profiles)[pid] is None
    assert worker.get(f"/v1/profiles/{pid}")[0] == 404
    # A later request for it finds nothing, and says why: not an identity never seen.
    status, again = http_delete(worker, "namespace=loyalty_id&id=PH-1&request_id=http-ph-2")
    assert status == 200
    RECEIPT.validate(again)
    assert (again["status"], again["reason"]) == ("not_found", ALREADY)
    assert http_delete(worker, "namespace=loyalty_id&id=PH-2")[1]["reason"] == NOT_FOUND

    send(s, [("pos", envelope(ident("loyalty_id", "PH-1"), at=2, attributes={"points": 9}))])
    settle(s)
    assert worker.get("/v1/profiles?namespace=loyalty_id&id=PH-1")[0] == 404
    assert not any(
        "loyalty_id:PH-1" in identity_set(d) for d in live(view(s, topics.profiles)).values()
    )


def test_delete_profile_deletes_every_identity_of_the_graph(pipeline_env, start_worker):
    s, topics = pipeline_env.settings, pipeline_env.topics
    worker = start_worker()
    send(
        s,
        [
            ("crm", envelope(ident("crm_id", "DP-1"), ident("email", "dp@example.com"), at=1)),
            ("web", envelope(ident("email", "dp@example.com"), ident("ecid", "DP-C"), at=2)),
            ("mobile", envelope(ident("device_id", "dp-phone"), ident("ecid", "DP-C"), at=3)),
            ("crm", envelope(ident("crm_id", "OTHER-1"), at=4)),
        ],
    )
    settle(s)
    pid = by_identity(view(s, topics.profiles), "crm_id:DP-1")["profile_id"]

    receipt, seconds = request(s, "delete_profile", "device_id", "DP-PHONE")
    print(f"\nprivacy delete_profile: request produced -> receipt on topic: {seconds:.3f}s")
    RECEIPT.validate(receipt)
    assert receipt["deleted_identities"] == [
        "crm_id:DP-1",
        "device_id:dp-phone",
        "ecid:DP-C",
        "email:dp@example.com",
    ]
    assert receipt["ceased_profile_ids"] == [pid]
    settle(s)
    profiles = view(s, topics.profiles)
    assert profiles[pid] is None
    assert identity_set(by_identity(profiles, "crm_id:OTHER-1")) == {"crm_id:OTHER-1"}
    for ns, value in [("crm_id", "DP-1"), ("email", "dp@example.com"), ("ecid", "DP-C")]:
        assert worker.get(f"/v1/graph?namespace={ns}&id={value}")[0] == 404


def test_receipts_and_graph_changes_fit_their_schemas(pipeline_env, start_worker):
    s, topics = pipeline_env.settings, pipeline_env.topics
    worker = start_worker(CDP_OUTPUT_ENCODING="json")
    # Three steps, each settled, so that every kind of change happens whatever order the
    # partitions are read in: separate graphs, then a merge, then a unique conflict.
    steps = [
        [
            ("web", envelope(ident("ecid", "GC-C"), ident("email", "gc1@example.com"), at=1)),
            ("crm", envelope(ident("crm_id", "GC-A"), ident("ecid", "GC-X"), at=2)),
            ("web", envelope(ident("ecid", "GC-K"), ident("email", "gc2@example.com"), at=3)),
            ("crm", envelope(ident("crm_id", "GC-D"), ident("ecid", "GC-D1"), at=4)),
        ],
        [("crm", envelope(ident("crm_id", "GC-A"), ident("email", "gc1@example.com"), at=5))],
        [("crm", envelope(ident("crm_id", "GC-A"), ident("email", "gc2@example.com"), at=6))],
    ]
    for step in steps:
        send(s, step)
        settle(s)
    statuses = {
        request(s, "delete_identity", "ecid", "GC-D1")[0]["status"],
        request(s, "delete_identity", "crm_id", "NEVER-SEEN")[0]["status"],
        request(s, "delete_identity", "shoe_size", "42")[0]["status"],
        request(s, "delete_profile", "crm_id", "GC-A")[0]["status"],
        http_delete(worker, "namespace=crm_id&id=GC-D")[1]["status"],
    }
    assert statuses == {"deleted", "not_found", "rejected"}
    settle(s)
    receipts = records(s, topics.privacy_receipts)
    assert len(receipts) == 5
    for r in receipts:
        RECEIPT.validate(r.value)
        assert r.key == r.value["request_id"]
    changes = records(s, topics.graph_changes)
    kinds = {r.value["type"] for r in changes}
    assert {"link_added", "link_removed", "graphs_merged", "graph_split"} <= kinds
    assert "identity_deleted" in kinds
    for r in changes:
        CHANGE.validate(r.value)
        assert r.key == r.value["profile_id"]
