"""decode_value: JSON or msgpack told apart by the first byte; every failure a reason."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest

from pipeline.ingest.decode import MAX_DEPTH, decode_value
from pipeline.model import Rejected

DOC = {"a": 1, "b": [1.5, "x", None, True], "c": {"d": "é"}}


def reason_of(raw: bytes | None, max_bytes: int = 10_000) -> str:
    with pytest.raises(Rejected) as caught:
        decode_value(raw, max_bytes)
    assert caught.value.detail
    return caught.value.reason


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):  # levels containers around a scalar
        value = {"k": value}
    return value


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps(DOC).encode(),
        b"\xef\xbb\xbf" + json.dumps(DOC).encode(),  # UTF-8 BOM
        b" \r\n\t" + json.dumps(DOC).encode() + b"\n",  # JSON whitespace around
        msgpack.packb(DOC),
        msgpack.packb(DOC, use_bin_type=False),  # old raw-str msgpack
    ],
)
def test_both_encodings_decode_to_the_same_map(raw: bytes) -> None:
    assert decode_value(raw, 10_000) == DOC


@pytest.mark.parametrize("size", [15, 16, 70_000])  # fixmap, map16, map32
def test_every_msgpack_map_header(size: int) -> None:
    doc = {f"k{i}": i for i in range(size)}
    assert decode_value(msgpack.packb(doc), 10**7) == doc


def test_null_value() -> None:
    assert reason_of(None) == "null_value"


def test_oversized_counts_bytes() -> None:
    raw = json.dumps({"a": "x" * 100}).encode()
    assert decode_value(raw, len(raw))
    assert reason_of(raw, len(raw) - 1) == "oversized"


@pytest.mark.parametrize(
    "raw",
    [b"", b"[1, 2]", b'"text"', b"42", b"null", b"hello", msgpack.packb([1, 2]), b"\x00"],
)
def test_not_an_object(raw: bytes) -> None:
    assert reason_of(raw) == "not_an_object"


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"", "this one is empty"),
        (b" [1, 2]", "this one is a JSON array"),
        (b'"text"', "this one is a JSON string"),
        (b"-42", "this one is a number"),
        (b"null", "this one starts with 'n' (0x6e)"),
        (b"hello", "this one starts with 'h' (0x68)"),
        (msgpack.packb([1, 2]), "this one starts with byte 0x92"),
    ],
)
def test_not_an_object_says_what_it_is(raw: bytes, says: str) -> None:
    """Found from outside: '[1, 2]' was 'starts with byte 0x5b', which a person decodes
    with a table."""
    with pytest.raises(Rejected) as caught:
        decode_value(raw, 10_000)
    assert caught.value.detail == f"a value must be a JSON object or a msgpack map; {says}"


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b'{"a": }',
        b'{"a": 1} {"b": 2}',  # trailing garbage
        b'{"a": 1} x',
        b'{"a": "\xff"}',  # not UTF-8
        b'{"a": ' + b"9" * 5000 + b"}",  # more digits than Python converts
        msgpack.packb({"a": 1}) + b"\x01",  # trailing byte
        msgpack.packb({"a": "xyz"})[:-1],  # truncated
        b"\x81\xa1a\xc1",  # 0xc1 is never used in msgpack
        b"\x81\xa2\xff\xfe\x01",  # str that is not UTF-8
        b"\xdf\xff\xff\xff\xff",  # claims 4 billion entries
    ],
)
def test_undecodable(raw: bytes) -> None:
    assert reason_of(raw) == "undecodable"


@pytest.mark.parametrize(
    "raw",
    [
        msgpack.packb({"a": b"bytes"}, use_bin_type=True),
        msgpack.packb({"a": [msgpack.ExtType(5, b"x")]}),
        msgpack.packb({"a": msgpack.Timestamp(1, 0)}),
        msgpack.packb({"a": float("nan")}),
        b'{"a": NaN}',
        b'{"a": {"b": -Infinity}}',
        b'{"a": 18446744073709551616}',  # 2**64: JSON can, msgpack and the output cannot
        b'{"a": [-9223372036854775809]}',
        b'{"a": {"b": [1e400]}}',  # a float literal too large for a double
        b'{"a": -1E+309}',
    ],
)
def test_values_json_cannot_hold(raw: bytes) -> None:
    assert reason_of(raw) == "unsupported_type"


def test_json_numbers_checked_while_parsing_say_where_as_the_walk_does() -> None:
    with pytest.raises(Rejected) as caught:
        decode_value(b'{"ok": [1, 2.5, -0, 1e308, 18446744073709551615], "x": {"y": NaN}}', 999)
    assert caught.value.detail == "x.y is nan"
    assert decode_value(b'{"a": 1e308, "b": -9223372036854775808}', 999)["a"] == 1e308


@pytest.mark.parametrize("raw", [b'{"a": "x\\ud800"}', b'{"a": ["\\udc00y"]}', b'{"\\uDBFF": 1}'])
def test_unpaired_surrogate_escapes_are_not_text(raw: bytes) -> None:
    assert reason_of(raw) == "undecodable"


def test_paired_surrogate_escapes_and_escaped_backslashes_are_text() -> None:
    assert decode_value(b'{"a": "\\ud83d\\ude00", "b": "C:\\\\ud800"}', 10**6) == {
        "a": "\U0001f600",
        "b": "C:\\ud800",
    }


def test_integers_within_64_bits_are_taken() -> None:
    doc = {"a": 2**64 - 1, "b": -(2**63)}
    assert decode_value(json.dumps(doc).encode(), 10**6) == doc
    assert decode_value(msgpack.packb(doc), 10**6) == doc


@pytest.mark.parametrize(
    "raw",
    [
        msgpack.packb({b"bin": 1}, use_bin_type=True),
        msgpack.packb({"a": [{b"bin": 1}]}, use_bin_type=True),
    ],
)
def test_map_keys_are_strings(raw: bytes) -> None:
    assert reason_of(raw) == "bad_key"


@pytest.mark.parametrize("key", [1, -1, 1.5, True, None])
def test_msgpack_refuses_other_keys_itself_and_they_are_bad_keys(key: Any) -> None:
    # strict_map_key: msgpack raises before a non-str, non-bytes key is even built (a
    # dict of crafted int keys would be a hash-collision attack); README: bad_key.
    raw = msgpack.packb({"event_id": "e", "attributes": {key: 1}})
    assert reason_of(raw) == "bad_key"


@pytest.mark.parametrize("encode", [json.dumps, msgpack.packb])
def test_depth_limit(encode: Any) -> None:
    def raw(levels: int) -> bytes:
        data = encode(nested(levels))
        return data.encode() if isinstance(data, str) else data

    assert decode_value(raw(MAX_DEPTH), 10**6)
    assert reason_of(raw(MAX_DEPTH + 1), 10**6) == "too_deep"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b'{"a":' + b"[" * 100_000,  # unterminated
        b"\x81\xa1a" + b"\x91" * 100_000 + b"\x01",
        b"\x81\xa1a" + b"\x81\xa1a" * 100_000 + b"\x01",
    ],
)
def test_hostile_nesting_is_rejected_without_recursion(raw: bytes) -> None:
    assert reason_of(raw, 10**6) == "too_deep"


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    doc = {"a": "[" * 1000, "b": '\\"{{{{', "c": "é" * 3}
    assert decode_value(json.dumps(doc).encode(), 10**6) == doc
    assert decode_value(json.dumps(doc, ensure_ascii=False).encode(), 10**6) == doc
