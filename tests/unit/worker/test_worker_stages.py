"""The worker's plain stages without Kafka or Redis: a fake graph store stands in."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import jsonschema
import pytest
from redis.exceptions import ConnectionError, ResponseError

from pipeline import metrics
from pipeline.identity.arguments import StitchEvent
from pipeline.identity.config import load
from pipeline.identity.replies import StitchResult
from pipeline.model import Event
from pipeline.notes import UpdateNote
from pipeline.publish.profiles import Publication, Publisher, PublishSettings
from pipeline.publish.sender import TRUNCATED, Sender, deadletter_record
from pipeline.records import OUTPUT_MAX_RECORD_BYTES, DeadLetter, Outputs, Record
from pipeline.resources import schema_text
from pipeline.retry import until_redis_answers
from pipeline.settings import Topics
from pipeline.stages import privacy as privacy_stage
from pipeline.stages import stitch as stitch_stage
from pipeline.stages.stitch import Stitcher, to_stitch_event

TOPICS = Topics("cdp.")
RECEIPT = jsonschema.Draft202012Validator(json.loads(schema_text("privacy-receipt.schema.json")))
NOW = int(time.time() * 1000)


def event(event_id: str, *identities: tuple[str, str], **extra: Any) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "timestamp": NOW - 1000,
            "kind": "experience",
            "identities": [{"namespace": ns, "id": v} for ns, v in identities],
            **extra,
        }
    ).encode()


def record(value: bytes | None, offset: int = 0) -> Record:
    return Record("cdp.events.web", 0, offset, b"k", value)


class FakeStore:
    """Answers every stitch with one profile per event; a poison id raises a script error."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[list[StitchEvent]] = []
        self.fail_first = fail_first

    async def stitch(self, events: Sequence[StitchEvent]) -> StitchResult:
        if self.fail_first:
            self.fail_first -= 1
            raise ConnectionError("redis is down")
        if any(e.event_id == "poison" for e in events):
            raise ResponseError("script error")
        self.calls.append(list(events))
        return StitchResult(
            outcomes=["duplicate" if e.event_id.startswith("dup") else "ok" for e in events],
            dirty={f"p_{e.primary}" for e in events},
            ceased={"p_gone"} if any(e.event_id == "merge" for e in events) else set(),
            changes=[{"type": "link_added", "profile_id": f"p_{e.primary}"} for e in events],
            graph_sizes=[len(e.identities) for e in events],
        )


def stitcher(store: FakeStore) -> Stitcher:
    return Stitcher(store, load(), TOPICS, max_event_bytes=10_000)  # type: ignore[arg-type]


async def stitched(store: FakeStore, records: Sequence[Record]) -> Outputs:
    s = stitcher(store)
    return await s.apply(s.stage(records))


async def test_bad_records_go_to_dead_letter_and_good_ones_to_redis_in_one_call() -> None:
    store = FakeStore()
    out = await stitched(
        store,
        [
            record(event("e1", ("crm_id", "A")), 0),
            record(b"\xc1garbage", 1),
            record(None, 2),
            record(event("e2", ("email", "test@test.com")), 3),
            record(event("e3", ("crm_id", "B"), ("ecid", "c1")), 4),
        ],
    )
    assert len(store.calls) == 1 and [e.event_id for e in store.calls[0]] == ["e1", "e3"]
    assert [(d.record.offset, d.reason) for d in out.deadletters] == [
        (1, "not_an_object"),
        (2, "null_value"),
        (3, "no_valid_identity"),
    ]
    headers = dict(out.deadletters[0].headers())
    assert headers["cdp-source-topic"] == b"cdp.events.web"
    assert headers["cdp-source-offset"] == b"1"
    assert headers["cdp-detail"]
    assert set(out.updates) == {"p_crm_id:A", "p_crm_id:B"}
    assert len(out.changes) == 2


async def test_a_staged_batch_run_again_sends_its_outputs_once_per_run() -> None:
    """The worker stages a batch once and runs its work again while it fails: each run
    makes its outputs anew."""
    store = FakeStore()
    s = stitcher(store)
    staged = s.stage([record(event("e1", ("crm_id", "A")), 0), record(None, 1)])
    assert [e.event_id for _, e in staged.events] == ["e1"] and not store.calls
    first, again = await s.apply(staged), await s.apply(staged)
    for out in (first, again):
        assert [d.record.offset for d in out.deadletters] == [1]
        assert set(out.updates) == {"p_crm_id:A"} and len(out.changes) == 1
    assert len(staged.deadletters) == 1 and len(store.calls) == 2


async def test_a_batch_publishes_each_profile_once_and_counts_the_events_folded() -> None:
    def coalesced() -> float:
        return metrics.REGISTRY.get_sample_value("cdp_profile_updates_coalesced_total") or 0.0

    before = coalesced()
    events = [("e1", "A"), ("e2", "A"), ("e3", "B"), ("e4", "A")]
    out = await stitched(
        FakeStore(), [record(event(eid, ("crm_id", v)), i) for i, (eid, v) in enumerate(events)]
    )
    assert set(out.updates) == {"p_crm_id:A", "p_crm_id:B"}
    assert coalesced() == before + 2


async def test_an_integer_beyond_64_bits_is_a_dead_letter_not_a_crash() -> None:
    store = FakeStore()
    out = await stitched(
        store,
        [
            record(event("big", ("crm_id", "A"), attributes={"n": 10**20}), 0),
            record(event("ok", ("crm_id", "B"), attributes={"n": 10**18}), 1),
        ],
    )
    assert [(d.record.offset, d.reason) for d in out.deadletters] == [(0, "unsupported_type")]
    assert [e.event_id for e in store.calls[0]] == ["ok"]


async def test_an_event_that_cannot_be_staged_is_a_dead_letter_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def staged(event: Event, record: Record) -> StitchEvent:
        if event.event_id == "poison":
            raise ValueError("cannot pack this")
        return to_stitch_event(event, record)

    monkeypatch.setattr(stitch_stage, "to_stitch_event", staged)
    store = FakeStore()
    out = await stitched(
        store,
        [record(event("poison", ("crm_id", "A")), 0), record(event("ok", ("crm_id", "B")), 1)],
    )
    assert [(d.record.offset, d.reason) for d in out.deadletters] == [(0, "stitch_error")]
    assert "cannot pack this" in out.deadletters[0].detail
    assert [e.event_id for e in store.calls[0]] == ["ok"]


async def test_a_script_error_dead_letters_only_the_event_that_causes_it() -> None:
    store = FakeStore()
    records = [record(event(f"e{i}", ("crm_id", f"C{i}")), i) for i in range(7)]
    records.insert(3, record(event("poison", ("crm_id", "X")), 99))
    out = await stitched(store, records)
    assert [(d.record.offset, d.reason) for d in out.deadletters] == [(99, "stitch_error")]
    assert sorted(e.event_id for call in store.calls for e in call) == [f"e{i}" for i in range(7)]


async def test_redis_outage_is_waited_out_not_skipped() -> None:
    store = FakeStore(fail_first=3)
    before = metrics.REDIS_ERRORS.labels("stitch")._value.get()
    out = await stitched(store, [record(event("e1", ("crm_id", "A")))])
    assert metrics.REDIS_ERRORS.labels("stitch")._value.get() - before == 3
    assert out.updates and not out.deadletters


async def test_until_redis_answers_propagates_other_errors() -> None:
    async def broken() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        await until_redis_answers("x", broken)


def test_notes_fold_to_the_earliest_times() -> None:
    merged = Publisher.coalesce(
        [
            ("p1", UpdateNote(500, 900)),
            ("p2", UpdateNote(1, 1)),
            ("p1", UpdateNote(300, 950)),
        ]
    )
    assert merged == {"p1": UpdateNote(300, 900), "p2": UpdateNote(1, 1)}


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, Any]] = []

    async def send_all(self, records: Sequence[tuple[str, bytes | None, bytes | None, Any]]) -> Any:
        self.sent += records

        async def delivered() -> None:
            return None

        return delivered()


async def test_sender_routes_each_output_to_its_topic_and_writes_no_update_notes() -> None:
    producer = FakeProducer()
    out = Outputs()
    out.deadletters.append(DeadLetter(record(b"x", 5), "not_an_object", "why"))
    out.changes.append({"type": "graphs_merged", "profile_id": "p_1"})
    out.note("p_1", UpdateNote(1, 2))  # published by the agent itself (publish/verified.py)
    await Sender(producer, TOPICS, "json", OUTPUT_MAX_RECORD_BYTES).send_outputs(out)
    topics = [s[0] for s in producer.sent]
    assert topics == ["cdp.deadletter", "cdp.graph-changes"]
    assert producer.sent[0][1:3] == (b"k", b"x")
    assert json.loads(producer.sent[1][2]) == {"type": "graphs_merged", "profile_id": "p_1"}


async def test_a_profile_document_too_large_for_its_topic_is_left_out_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found from outside: eleven 1 MB attributes made a 12 MB document, which the
    producer refused, crashing the publish agent on every retry of its batch."""
    producer = FakeProducer()
    huge = b"x" * OUTPUT_MAX_RECORD_BYTES
    publications = [
        Publication("p_1", b"small", None),
        Publication("p_2", huge, None),
        Publication("p_3", None, None),
    ]
    sender = Sender(producer, TOPICS, "msgpack", OUTPUT_MAX_RECORD_BYTES)

    def left_out() -> float:
        sample = ("cdp_profiles_unpublished_total", {"reason": "too_large"})
        return metrics.REGISTRY.get_sample_value(*sample) or 0.0

    before = left_out()
    await (await sender.queue_publications(sender.publishable(publications)))
    assert left_out() == before + 1
    assert [(topic, key, value) for topic, key, value, _ in producer.sent] == [
        ("cdp.profiles", b"p_1", b"small"),
        ("cdp.profiles", b"p_3", None),
    ]
    assert "profile p_2 not published" in caplog.text


def _record_size(key: bytes | None, value: bytes | None, headers: list[Any]) -> int:
    """What aiokafka's producer checks (and the broker's batch holds at most)."""
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    return DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)


def test_a_dead_letter_carries_the_original_key_and_bytes_when_they_fit() -> None:
    letter = DeadLetter(Record("cdp.events.web", 3, 7, b"key", b"x" * 5000), "oversized", "why")
    key, value, headers = deadletter_record(letter, 6000)
    assert (key, value) == (b"key", b"x" * 5000)
    assert TRUNCATED not in dict(headers)


@pytest.mark.parametrize(
    ("key", "value", "limit"),
    [
        (b"key", b"x" * 5000, 4000),  # the value is cut
        (b"key", b"x" * 100_000, 65_536),  # across a varint width of its length
        (b"k" * 5000, b"x" * 100, 1000),  # the value goes, then the key is cut
        (None, b"x" * 5000, 1000),
        (b"k" * 5000, None, 1000),
    ],
)
def test_a_dead_letter_too_large_for_its_topic_carries_the_first_bytes_and_says_so(
    key: bytes | None, value: bytes | None, limit: int
) -> None:
    letter = DeadLetter(Record("cdp.events.web", 3, 7, key, value), "oversized", "why")
    sent_key, sent_value, headers = deadletter_record(letter, limit)
    assert limit - 8 <= _record_size(sent_key, sent_value, headers) <= limit
    assert (key or b"").startswith(sent_key or b"")
    assert (value or b"").startswith(sent_value or b"")
    assert (sent_key is None, sent_value is None) == (key is None, value is None)
    by_name = dict(headers)
    assert by_name[TRUNCATED] == f"key={len(key or b'')} value={len(value or b'')}".encode()
    assert by_name["cdp-reason"] == b"oversized" and by_name["cdp-source-offset"] == b"7"


def test_a_dead_letter_keeps_the_producers_headers_before_ours_and_none_named_as_ours() -> None:
    own = (("traceparent", b"00-abc-01"), ("cdp-reason", b"forged"), ("tenant", b"t1"))
    letter = DeadLetter(Record("cdp.events.web", 3, 7, b"k", b"v", own), "bad_json", "why")
    headers = letter.headers()
    assert headers[:2] == [("traceparent", b"00-abc-01"), ("tenant", b"t1")]
    assert [v for name, v in headers if name == "cdp-reason"] == [b"bad_json"]
    typed = DeadLetter(Record("t", 0, 1, b"k", b"v", (("content-type", b"text/json"),)), "x", "y")
    _, _, sent = deadletter_record(typed, OUTPUT_MAX_RECORD_BYTES)
    assert [v for name, v in sent if name == "content-type"] == [b"application/octet-stream"]


def test_publish_settings_defaults_match_the_documented_ones() -> None:
    s = PublishSettings()
    assert (s.encoding, s.policy, s.recent_limit) == ("msgpack", "timestamp", 20)


async def test_dropped_identities_are_counted_by_namespace_and_reason() -> None:
    s = stitcher(FakeStore())
    before = metrics.IDENTITIES_DROPPED.labels("loyalty_card", "unknown_namespace")._value.get()
    s.stage(
        [
            record(
                event(
                    "e1",
                    ("crm_id", "A"),
                    ("loyalty_card", "x"),
                    ("email", "null"),
                    ("Bad Name!", "y"),
                )
            )
        ]
    )
    assert (
        metrics.IDENTITIES_DROPPED.labels("loyalty_card", "unknown_namespace")._value.get()
        == before + 1
    )
    assert metrics.IDENTITIES_DROPPED.labels("email", "blocked_value")._value.get() >= 1
    assert metrics.IDENTITIES_DROPPED.labels("other", "unknown_namespace")._value.get() >= 1


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (
            {"request_id": "rq-1", "action": "forget", "namespace": "email", "id": "a@x.com"},
            "bad_action",
        ),
        (
            {"request_id": "rq-1", "action": "delete_identity", "namespace": "email"},
            "missing_field",
        ),
    ],
)
async def test_a_privacy_request_that_cannot_be_carried_out_gets_a_receipt_saying_why(
    doc: dict[str, Any], reason: str
) -> None:
    """CONTRACT 2: a receipt says what was deleted, or why nothing was; a requester who
    named a request_id waits for it. The request also goes to the dead-letter topic."""
    raw = json.dumps(doc).encode()
    out, receipt = await privacy_stage.handle_request(
        FakeStore(), load(), Record("cdp.privacy-requests", 0, 0, b"k", raw), 4096
    )
    assert [d.reason for d in out.deadletters] == [reason]
    assert receipt is not None
    assert receipt["request_id"] == "rq-1" and receipt["status"] == "rejected"
    assert receipt["reason"] == out.deadletters[0].detail
    assert RECEIPT.is_valid(receipt), list(RECEIPT.iter_errors(receipt))


@pytest.mark.parametrize(
    "raw", [b"not json", b'{"action": "delete_identity"}', b'{"request_id": ""}']
)
async def test_a_privacy_request_without_a_usable_request_id_only_dead_letters(raw: bytes) -> None:
    out, receipt = await privacy_stage.handle_request(
        FakeStore(), load(), Record("cdp.privacy-requests", 0, 0, b"k", raw), 4096
    )
    assert len(out.deadletters) == 1 and receipt is None
