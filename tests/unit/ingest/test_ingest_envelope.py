"""parse_event on whole envelopes: the schema, timestamps, channel, the reason codes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

from pipeline.ingest import REJECT_REASONS
from pipeline.ingest.timestamps import EARLIEST_MS, MAX_AHEAD_MS, parse_timestamp
from pipeline.model import Event, Identity, Rejected, Source

Envelope = Callable[..., dict[str, Any]]
Parse = Callable[..., Event]

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def rejected(parse: Parse, doc: dict[str, Any] | bytes | None) -> Rejected:
    with pytest.raises(Rejected) as caught:
        parse(doc)
    assert caught.value.reason in REJECT_REASONS
    return caught.value


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_contract_example(parse: Parse, envelope: Envelope, encoding: str) -> None:
    event = parse(envelope(), encoding=encoding)
    assert event.event_id == "b8a0c6e2-0001"
    assert event.timestamp_ms == 1_795_877_121_123
    assert event.kind == "experience"
    assert event.channel == "web"
    assert event.identities == [Identity("ecid", "38652"), Identity("crm_id", "31260XYZ")]
    assert event.primary == Identity("crm_id", "31260XYZ")
    assert event.attributes == {"firstName": "Evan", "loyalty": {"tier": "gold"}}
    assert event.event == {"type": "commerce.productViews", "sku": "SHOE-42"}
    assert event.type == "commerce.productViews"
    assert event.source == Source("cdp.events.web", 3, 42)
    assert event.dropped == []


def test_optional_fields_default(parse: Parse, envelope: Envelope) -> None:
    event = parse(
        envelope(channel=None, attributes=None, event=None, kind="record"), channel_default="kiosk"
    )
    assert (event.channel, event.attributes, event.event, event.type) == ("kiosk", {}, {}, "record")


def test_null_optional_fields_mean_absent(parse: Parse, envelope: Envelope) -> None:
    raw = json.dumps({**envelope(), "channel": None, "attributes": None, "event": None})
    event = parse(raw.encode(), channel_default="pos")
    assert (event.channel, event.attributes, event.event) == ("pos", {}, {})


def test_unknown_top_level_fields_are_ignored(parse: Parse, envelope: Envelope) -> None:
    assert parse(envelope(producer_version="3.1", _meta={"x": 1})).event_id


@pytest.mark.parametrize("name", ["event_id", "timestamp", "kind", "identities"])
def test_missing_field(parse: Parse, envelope: Envelope, name: str) -> None:
    doc = envelope()
    del doc[name]
    error = rejected(parse, doc)
    assert (error.reason, error.detail) == ("missing_field", f"{name} is required")


def test_missing_identity_field(parse: Parse, envelope: Envelope) -> None:
    error = rejected(parse, envelope(identities=[{"namespace": "ecid", "id": "1"}, {"id": "2"}]))
    assert (error.reason, error.detail) == ("missing_field", "identities[1].namespace is required")


@pytest.mark.parametrize(
    ("fields", "reason", "detail"),
    [
        ({"event_id": ""}, "bad_event_id", "event_id is empty"),
        ({"event_id": "x" * 257}, "bad_event_id", "event_id has 257 characters, at most 256"),
        ({"event_id": 7}, "bad_event_id", "event_id must be a string, not an integer"),
        ({"kind": "click"}, "bad_kind", "kind must be one of record, experience, not 'click'"),
        ({"channel": "Web"}, "bad_channel", None),
        ({"channel": "web\n"}, "bad_channel", None),  # Python's "$" would let this by
        ({"channel": 5}, "bad_channel", None),
        ({"identities": []}, "no_valid_identity", "identities has 0, at least 1 needed"),
        ({"identities": {"namespace": "ecid"}}, "wrong_type", None),
        (
            {"identities": [{"namespace": "ecid", "id": str(i)} for i in range(21)]},
            "too_many_identities",
            "21 identities, at most 20",
        ),
        (
            {"identities": [{"namespace": "ecid", "id": "1"}, {"namespace": "ecid", "id": 1.5}]},
            "wrong_type",
            "identities[1].id must be a string or an integer, not a number",
        ),
        (
            {"identities": [{"namespace": "ecid", "id": "1", "primary": "yes"}]},
            "wrong_type",
            "identities[0].primary must be true or false, not a string",
        ),
        ({"attributes": [1]}, "wrong_type", "attributes must be an object, not an array"),
        ({"event": "click"}, "wrong_type", "event must be an object, not a string"),
        ({"event": {"type": 3}}, "wrong_type", "event.type must be a string, not an integer"),
    ],
)
def test_schema_reasons(
    parse: Parse, envelope: Envelope, fields: dict[str, Any], reason: str, detail: str | None
) -> None:
    error = rejected(parse, envelope(**fields))
    assert error.reason == reason
    if detail is not None:
        assert error.detail == detail


def test_first_error_is_the_shallowest(parse: Parse, envelope: Envelope) -> None:
    doc = envelope(kind="bad", identities=[{"namespace": 1, "id": "x"}])
    del doc["event_id"]
    assert rejected(parse, doc).reason == "missing_field"


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-11-28T14:45:21Z", 1_795_877_121_000),
        ("2026-11-28T14:45:21.1Z", 1_795_877_121_100),
        ("2026-11-28T14:45:21.123456789Z", 1_795_877_121_123),
        ("2026-11-28T15:45:21.123+01:00", 1_795_877_121_123),
        ("2026-11-28T09:15:21.123-05:30", 1_795_877_121_123),
        ("2026-11-28T14:45:21.123+00:00", 1_795_877_121_123),
        # ISO-8601's other forms of a zone, a decimal comma, and minutes without seconds
        # (Java's OffsetDateTime.toString() leaves ":00" out).
        ("2026-11-28T15:45:21.123+0100", 1_795_877_121_123),
        ("2026-11-28T09:15:21.123-0530", 1_795_877_121_123),
        ("2026-11-28T16:45:21.123+02", 1_795_877_121_123),
        ("2026-11-28T14:45:21,123Z", 1_795_877_121_123),
        ("2026-11-28T14:45Z", 1_795_877_100_000),
        ("2026-11-28T15:45+01:00", 1_795_877_100_000),
        # RFC 3339 5.6: "T" and "Z" may be lower case.
        ("2026-11-28t14:45:21.123z", 1_795_877_121_123),
        ("2026-11-28t15:45:21.123+01:00", 1_795_877_121_123),
        # RFC 3339 5.6's space for "T", as SQL exports write it.
        ("2026-11-28 14:45:21Z", 1_795_877_121_000),
        ("2026-11-28 15:45:21.123+01:00", 1_795_877_121_123),
        # ISO-8601's basic format: no "-" or ":" (a zone in either form).
        ("20261128T144521Z", 1_795_877_121_000),
        ("20261128T154521.123+0100", 1_795_877_121_123),
        ("20261128t144521,123z", 1_795_877_121_123),
        ("20261128T1445Z", 1_795_877_100_000),
        ("20261128T164521.123+02", 1_795_877_121_123),
        # A leap second (23:59:60 UTC) is the last millisecond of its minute, fraction
        # or not, so it sorts after the minute's other times and before the next day.
        ("2016-12-31T23:59:60Z", 1_483_228_799_999),
        ("2016-12-31T23:59:60.5Z", 1_483_228_799_999),
        ("2017-01-01T00:59:60+01:00", 1_483_228_799_999),
        ("20161231T235960Z", 1_483_228_799_999),
        (1_795_877_121_123, 1_795_877_121_123),
        (1_795_877_121_123.0, 1_795_877_121_123),
        # time.time() * 1000: the fraction of a millisecond goes, as ISO's digits after
        # the milliseconds do.
        (1_795_877_121_123.999, 1_795_877_121_123),
        (1.5e12 + 0.5, 1_500_000_000_000),
        # Epoch ms as digits in a string, as SDKs and CSV exports send them; a fraction
        # is dropped as a float's is.
        ("1795877121123", 1_795_877_121_123),
        ("1795877121123.999", 1_795_877_121_123),
        ("01795877121123", 1_795_877_121_123),
        (str(EARLIEST_MS), EARLIEST_MS),
    ],
)
def test_timestamps(text: str | int, ms: int, now_ms: int) -> None:
    assert parse_timestamp(text, now_ms) == ms


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-28T14:45:21.123",  # naive: no zone
        "2026-11-28T14:45:21",
        "2026-11-28  14:45:21Z",  # one space only
        "2026-11-28_14:45:21Z",
        "2026-11-28",
        "20261128",
        # Basic and extended forms are not mixed, and the basic one takes no space.
        "20261128T14:45:21Z",
        "2026-11-28T144521Z",
        "20261128 144521Z",
        "2026112T144521Z",
        "2016-12-31T23:58:60Z",  # a leap second only ends a UTC day
        "2016-12-31T23:59:61Z",
        "2026-13-28T14:45:21Z",
        "2026-02-30T14:45:21Z",
        "2026-11-28T24:00:00Z",
        "2026-11-28T14:45:60Z",
        "2026-11-28T14:45:21+24:00",
        "2026-11-28T14:45:21+2400",
        "2026-11-28T14:45:21+1",
        "2026-11-28T14:45:21+01:0",
        "2026-11-28T14:45:21.Z",
        "2026-11-28T14Z",
        "2026-11-28T14:45:21Z\n",
        "२०२६-11-28T14:45:21Z",  # Devanagari digits
        "1999-12-31T23:59:59.999Z",  # before 2000
        EARLIEST_MS - 1,
        "2026-12-02T00:00:00.001Z",  # more than a day after now_ms
        10**30,
        float("inf"),
        float("nan"),
        1e300,
        True,
        None,
        # Digits in a string: ASCII digits and one '.' only, at most 20 before it.
        "",
        " 1795877121123",
        "1795877121123 ",
        "1795877121123\n",
        "-1795877121123",
        "+1795877121123",
        "1795877121123.",
        ".5",
        "1.795877121123e12",
        "1795877121123,5",
        "1_795_877_121_123",
        "".join(chr(0xFF10 + int(d)) for d in "1795877121123"),  # fullwidth digits
        "9" * 21,
        "9" * 5000,  # past Python's int() digit limit: a rejection, not a ValueError
        str(EARLIEST_MS - 1),
        "2000000000000",  # more than a day after now_ms
    ],
)
def test_bad_timestamps(value: Any, now_ms: int) -> None:
    with pytest.raises(Rejected) as caught:
        parse_timestamp(value, now_ms)
    assert caught.value.reason == "bad_timestamp"


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        (1_795_877_121, "seconds"),
        (1_795_877_121_123_456, "microseconds"),
        (1_795_877_121 * 10**9, "nanoseconds"),
        (1_795_877_121.123, "seconds"),  # time.time()
        ("1795877121", "seconds"),
        ("1795877121.123", "seconds"),
        ("1795877121123456", "microseconds"),
        (str(1_795_877_121 * 10**9), "nanoseconds"),
    ],
)
def test_a_timestamp_in_another_unit_says_so(value: float | str, unit: str, now_ms: int) -> None:
    """Found from outside: epoch seconds were only 'before 2000'."""
    with pytest.raises(Rejected) as caught:
        parse_timestamp(value, now_ms)
    assert f"(epoch {unit}? timestamp takes epoch milliseconds)" in caught.value.detail


def test_timestamp_bounds_are_inclusive(now_ms: int) -> None:
    assert parse_timestamp(EARLIEST_MS, now_ms) == EARLIEST_MS
    assert parse_timestamp(now_ms + MAX_AHEAD_MS, now_ms) == now_ms + MAX_AHEAD_MS
    with pytest.raises(Rejected):
        parse_timestamp(now_ms + MAX_AHEAD_MS + 1, now_ms)


def test_msgpack_timestamp_type(parse: Parse, envelope: Envelope) -> None:
    """msgpack's own time type (ext -1) as the timestamp is its epoch ms, and out of range
    as a number would be; as an attribute it is still a type the profile cannot hold."""
    stamp = msgpack.Timestamp(1_795_877_121, 123_456_789)
    assert parse(envelope(timestamp=stamp), encoding="msgpack").timestamp_ms == 1_795_877_121_123
    with pytest.raises(Rejected) as caught:
        parse(envelope(timestamp=msgpack.Timestamp(1_000, 0)), encoding="msgpack")
    assert caught.value.reason == "bad_timestamp"
    with pytest.raises(Rejected) as caught:
        parse(envelope(attributes={"at": stamp}), encoding="msgpack")
    assert caught.value.reason == "unsupported_type"


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_epoch_ms_with_a_fraction_in_event(parse: Parse, envelope: Envelope, encoding: str) -> None:
    """What `time.time() * 1000` gives takes the schema's path: the schema accepts it too."""
    event = parse(envelope(timestamp=1_795_877_121_123.75), encoding=encoding)
    assert event.timestamp_ms == 1_795_877_121_123


def test_an_iso_timestamp_gets_no_unit_hint(now_ms: int) -> None:
    """1970-01-21 is 1.7e9 ms, which read as seconds would be plausible: not a unit slip."""
    with pytest.raises(Rejected) as caught:
        parse_timestamp("1970-01-21T00:00:00Z", now_ms)
    assert "epoch" not in caught.value.detail


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize("value", ["1795877121123", "1795877121123.75"])
def test_epoch_ms_in_a_string_in_event(
    parse: Parse, envelope: Envelope, encoding: str, value: str
) -> None:
    """Found from outside: what many SDKs and CSV exports send was bad_timestamp."""
    event = parse(envelope(timestamp=value), encoding=encoding)
    assert event.timestamp_ms == 1_795_877_121_123


@pytest.mark.parametrize(
    "value", ["2026-11-28T14:45:21", 1.5, "2040-01-01T00:00:00Z", "1795877121", "1e12"]
)
def test_bad_timestamp_in_event(parse: Parse, envelope: Envelope, value: Any) -> None:
    assert rejected(parse, envelope(timestamp=value)).reason == "bad_timestamp"


def test_every_reason_code_is_documented_in_the_schemas() -> None:
    event = json.loads((SCHEMAS / "event.schema.json").read_text())["description"]
    privacy = json.loads((SCHEMAS / "privacy-request.schema.json").read_text())["description"]
    documented = set(re.findall(r"[a-z_]+", event + " " + privacy))
    assert set(REJECT_REASONS) <= documented


def test_every_schema_field_is_described() -> None:
    for name in ("event.schema.json", "privacy-request.schema.json"):
        schema = json.loads((SCHEMAS / name).read_text())
        stack = [schema]
        while stack:
            node = stack.pop()
            for field, spec in node.get("properties", {}).items():
                assert spec.get("description"), f"{name}: {field}"
                stack.append(spec)
            if "items" in node:
                stack.append(node["items"])
