"""Hostile input: parse_event returns an Event or raises Rejected, never anything else, and
every Event it returns is well-formed."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.identity.config import IdentityConfig
from pipeline.ingest import DROP_REASONS, REJECT_REASONS, normalise_identity
from pipeline.ingest.decode import _check_tree, _load_json, _load_json_checked, decode_value
from pipeline.ingest.timestamps import EARLIEST_MS, MAX_AHEAD_MS
from pipeline.model import Event, Rejected

Parse = Callable[..., Event]
FUZZ = settings(
    max_examples=1000,
    # CI replays a fixed set so main stays green; elsewhere every run explores anew.
    derandomize=bool(os.environ.get("CI")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MSGPACK_INTS = st.integers(min_value=-(2**63), max_value=2**64 - 1)
SCALARS = st.none() | st.booleans() | MSGPACK_INTS | st.floats() | st.text(max_size=20)
JSON_LIKE = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
)
TIMESTAMPS = st.one_of(
    st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1), timezones=ZONES
    ).map(lambda moment: moment.isoformat().replace("+00:00", "Z")),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1)).map(
        datetime.isoformat
    ),  # naive
    st.integers(min_value=EARLIEST_MS - 10**9, max_value=2**64 - 1),
    st.text(max_size=30),
    JSON_LIKE,
)
PLAUSIBLE_IDS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "null",
            "undefined",
            "",
            "  ",
            "test@test.com",
            "A@x.com",
            "a@x.com",
            "b@x.com",
            "(415) 555-2671",
            "+1 415-555-2671",
            "415.555.2671",
            "+442079460958",
            "12",
            "31260XYZ",
            "c-1",
            "dev-0001",
            "00000000-0000-0000-0000-000000000000",
            "x" * 2000,
        ]
    ),
    MSGPACK_INTS,
)
NAMESPACES = (
    st.sampled_from(["crm_id", "loyalty_id", "email", "phone", "device_id", "ecid", "twitter", ""])
    | st.text(max_size=10)
    | JSON_LIKE
)
IDENTITY = (
    st.fixed_dictionaries(
        {"namespace": NAMESPACES, "id": PLAUSIBLE_IDS | JSON_LIKE},
        optional={"primary": st.booleans() | JSON_LIKE},
    )
    | JSON_LIKE
)
CLEAN_SCALARS = (
    st.none()
    | st.booleans()
    | MSGPACK_INTS
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
ATTRIBUTES = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        CLEAN_SCALARS,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=10,
    ),
    max_size=4,
)
# Mostly valid envelopes, so that the checks on accepted events get exercised...
PLAUSIBLE = st.fixed_dictionaries(
    {
        "event_id": st.text(min_size=1, max_size=40),
        "timestamp": st.one_of(
            st.datetimes(
                min_value=datetime(2000, 1, 1), max_value=datetime(2026, 11, 30), timezones=ZONES
            ).map(lambda moment: moment.isoformat().replace("+00:00", "Z")),
            st.integers(min_value=EARLIEST_MS, max_value=1_796_083_200_000),
        ),
        "kind": st.sampled_from(["record", "experience"]),
        "identities": st.lists(
            st.fixed_dictionaries(
                {
                    "namespace": st.sampled_from(
                        ["crm_id", "loyalty_id", "email", "phone", "device_id", "ecid", "twitter"]
                    ),
                    "id": PLAUSIBLE_IDS,
                },
                optional={"primary": st.booleans()},
            ),
            min_size=1,
            max_size=21,
        ),
    },
    optional={
        "channel": st.sampled_from(["web", "pos", "call_centre"]),
        "attributes": ATTRIBUTES,
        "event": st.fixed_dictionaries({}, optional={"type": st.text(max_size=20)}),
    },
)
# ...then one field replaced by something hostile, or removed.
REMOVE = object()
HOSTILE = {
    "event_id": st.text(max_size=300) | JSON_LIKE,
    "timestamp": TIMESTAMPS,
    "kind": st.sampled_from(["click", "Record"]) | JSON_LIKE,
    "channel": st.sampled_from(["Web", "web\n", ""]) | JSON_LIKE,
    "identities": st.lists(IDENTITY, max_size=24) | JSON_LIKE,
    "attributes": JSON_LIKE,
    "event": st.fixed_dictionaries({}, optional={"type": JSON_LIKE}) | JSON_LIKE,
    "extra": JSON_LIKE,
}
CHANGES = st.none() | st.sampled_from(sorted(HOSTILE)).flatmap(
    lambda field: st.tuples(st.just(field), HOSTILE[field] | st.just(REMOVE))
)


def mutate(doc: dict[str, Any], change: tuple[str, Any] | None) -> dict[str, Any]:
    if change is None:
        return doc
    field, value = change
    doc = {key: item for key, item in doc.items() if key != field}
    return doc if value is REMOVE else {**doc, field: value}


def encode(doc: Any, encoding: str) -> bytes:
    return msgpack.packb(doc) if encoding == "msgpack" else json.dumps(doc).encode()


def check(parse: Parse, config: IdentityConfig, now_ms: int, raw: bytes | None) -> None:
    try:
        event = parse(raw)
    except Rejected as rejected:
        assert rejected.reason in REJECT_REASONS, rejected.reason
        assert rejected.detail
        return
    assert 1 <= len(event.identities) <= 20
    assert len(set(event.identities)) == len(event.identities)
    assert event.primary in event.identities
    for identity in event.identities:
        assert identity.namespace in config.namespaces
        assert normalise_identity(config, identity.namespace, identity.id) == identity
    unique = [i.namespace for i in event.identities if config.namespaces[i.namespace].unique]
    assert len(unique) == len(set(unique))
    assert all(dropped.reason in DROP_REASONS for dropped in event.dropped)
    assert EARLIEST_MS <= event.timestamp_ms <= now_ms + MAX_AHEAD_MS
    assert event.kind in ("record", "experience")
    assert isinstance(event.attributes, dict)
    assert isinstance(event.event, dict)


@FUZZ
@given(raw=st.binary(max_size=512) | st.binary(max_size=512).map(lambda tail: b"\x83" + tail))
def test_arbitrary_bytes(parse: Parse, config: IdentityConfig, now_ms: int, raw: bytes) -> None:
    check(parse, config, now_ms, raw)


@FUZZ
@given(doc=JSON_LIKE, encoding=st.sampled_from(["json", "msgpack"]))
def test_arbitrary_structures(
    parse: Parse, config: IdentityConfig, now_ms: int, doc: Any, encoding: str
) -> None:
    check(parse, config, now_ms, encode(doc, encoding))


@FUZZ
@given(
    doc=st.dictionaries(st.text(max_size=8), JSON_LIKE, max_size=4),
    big=st.integers(min_value=2**63, max_value=2**80) | st.just(0),
)
def test_json_numbers_checked_while_parsing_agree_with_the_walk(
    doc: dict[str, Any], big: int
) -> None:
    """decode_value skips the walk for JSON whose numbers it checked while parsing."""
    raw = json.dumps({**doc, "big": [big, -big]}).encode()
    try:
        _check_tree(json.loads(raw))
        walked: Rejected | None = None
    except Rejected as exc:
        walked = exc
    assume(walked is None or walked.reason != "too_deep")  # _load_json words that its own way
    try:
        decode_value(raw, 10**6)
        parsed: Rejected | None = None
    except Rejected as exc:
        parsed = exc
    assert (parsed and (parsed.reason, parsed.detail)) == (
        walked and (walked.reason, walked.detail)
    )


def outcome(load: Callable[[bytes], tuple[dict[str, Any], bool]], raw: bytes) -> Any:
    """What a JSON loader made of ``raw``; repr tells 1 from 1.0 and shows NaN and order."""
    try:
        value, checked = load(raw)
    except Rejected as exc:
        return exc.reason, exc.detail
    return repr(value), checked


@FUZZ
@given(
    doc=st.dictionaries(st.text(max_size=8), JSON_LIKE, max_size=4),
    extra=st.sampled_from([[], [2**63], [-(2**63) - 1], [2**64], [10**30], [12345678901234567890]]),
    number=st.from_regex(
        r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][-+]?[0-9]{1,3})?", fullmatch=True
    ),
    ascii_only=st.booleans(),
    cut=st.none() | st.tuples(st.integers(min_value=0, max_value=300), st.binary(max_size=3)),
)
def test_orjson_and_json_paths_agree(
    doc: dict[str, Any],
    extra: list[int],
    number: str,
    ascii_only: bool,
    cut: tuple[int, bytes] | None,
) -> None:
    """_load_json takes orjson where it can: the same values (floats rounded alike), else
    the json path's words."""
    text = json.dumps({**doc, "n": extra, "x": "NUMBER"}, ensure_ascii=ascii_only)
    raw = text.replace('"NUMBER"', number).encode("utf-8", "surrogatepass")
    if cut is not None:  # bytes replaced somewhere: bad UTF-8, bad syntax, odd numbers
        at, junk = cut
        raw = raw[: at % len(raw)] + junk + raw[at % len(raw) + len(junk) :]
    assert outcome(_load_json, raw) == outcome(_load_json_checked, raw)


@FUZZ
@given(doc=PLAUSIBLE, change=CHANGES, encoding=st.sampled_from(["json", "msgpack"]))
def test_mutated_envelopes(
    parse: Parse,
    config: IdentityConfig,
    now_ms: int,
    doc: dict[str, Any],
    change: tuple[str, Any] | None,
    encoding: str,
) -> None:
    check(parse, config, now_ms, encode(mutate(doc, change), encoding))


@FUZZ
@given(
    cut=st.integers(min_value=0),
    flip=st.integers(min_value=0, max_value=255),
    encoding=st.sampled_from(["json", "msgpack"]),
)
def test_corrupted_valid_envelopes(
    parse: Parse,
    config: IdentityConfig,
    now_ms: int,
    envelope: Callable[..., dict[str, Any]],
    cut: int,
    flip: int,
    encoding: str,
) -> None:
    raw = bytearray(encode(envelope(), encoding))
    raw[cut % len(raw)] ^= flip
    check(parse, config, now_ms, bytes(raw))
    check(parse, config, now_ms, bytes(raw[: cut % len(raw)]))


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"attributes":' + b'{"a":' * 10_000 + b"1" + b"}" * 10_001,
        b'{"attributes":' + b"[" * 10_000,
        b"\x81\xa1a" * 10_000 + b"\x01",
        b"\x81\xaaattributes" + b"\x91" * 10_000 + b"\xc0",
    ],
)
def test_deep_nesting(parse: Parse, config: IdentityConfig, now_ms: int, raw: bytes) -> None:
    with pytest.raises(Rejected) as caught:
        parse(raw, max_bytes=10**6)
    assert caught.value.reason in ("too_deep", "not_an_object")


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize(
    "field", ["event_id", "timestamp", "kind", "channel", "identity", "attribute"]
)
def test_huge_strings(
    parse: Parse, envelope: Callable[..., dict[str, Any]], encoding: str, field: str
) -> None:
    huge = "é" * 400_000
    doc = envelope()
    if field == "identity":
        doc["identities"].append({"namespace": "phone", "id": huge})
    elif field == "attribute":
        doc["attributes"]["bio"] = huge
    else:
        doc[field] = huge
    raw = encode(doc, encoding)
    with pytest.raises(Rejected) as caught:
        parse(raw)  # the default limit is 64 KiB
    assert caught.value.reason == "oversized"
    try:
        event = parse(raw, max_bytes=len(raw))
    except Rejected as rejected:
        assert rejected.reason in REJECT_REASONS
    else:
        assert field in ("identity", "attribute")
        assert [d.reason for d in event.dropped] == (["bad_format"] if field == "identity" else [])


@FUZZ
@given(doc=PLAUSIBLE, change=CHANGES)
def test_fast_and_full_schema_validators_agree(doc: dict[str, Any], change: Any) -> None:
    """The compiled hot-path validator and jsonschema give the same verdict."""
    from pipeline.ingest.envelope import EVENT_SCHEMA

    mutated = mutate(doc, change)
    fast, full = EVENT_SCHEMA.accepts(mutated)
    assert fast == full, mutated


@FUZZ
@given(doc=PLAUSIBLE, change=CHANGES)
def test_a_plain_envelope_is_one_the_schema_accepts(doc: dict[str, Any], change: Any) -> None:
    """The shape check that spares the compiled schema vouches only for valid envelopes
    (its patterns are re-checked either way), and for the plausible ones."""
    from pipeline.ingest.envelope import EVENT_SCHEMA, plain_envelope

    mutated = mutate(doc, change)
    patterns_hold = all(
        not isinstance(mutated.get(name), str) or pattern.fullmatch(mutated[name])
        for name, pattern in EVENT_SCHEMA.patterns.items()
    )
    if plain_envelope(mutated) and patterns_hold:
        assert EVENT_SCHEMA.accepts(mutated) == (True, True), mutated
    if change is None and len(doc["identities"]) <= 20:
        assert plain_envelope(mutated), mutated
