"""Output encoding and its content-type header (issue 10)."""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.publish.encode import content_type, decode, encode, pack

DOC = {"profile_id": "p_1", "attributes": {"name": "Ève"}, "version": 3}


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_a_record_decodes_as_its_header_says(encoding: str) -> None:
    name, media = content_type(encoding)
    assert name == "content-type" and media == f"application/{encoding}".encode()
    assert decode(encode(DOC, encoding), media) == DOC
    assert decode(encode(DOC, encoding)) == DOC  # records written before the header


def test_the_header_wins_over_the_first_byte() -> None:
    # JSON that does not start with '{' (leading white space) is still JSON when it says so.
    assert decode(b' {"a": 1}', b"application/json") == {"a": 1}
    with pytest.raises(KeyError):
        content_type("xml")  # only the two encodings CDP_OUTPUT_ENCODING accepts


@pytest.mark.parametrize(
    "value", [DOC, [], "é", 2**64 - 1, -(2**63), 1.5, None, True, b"\x00", {"n": [1, {"a": None}]}]
)
def test_a_kept_packer_packs_what_packb_does(value: object) -> None:
    assert pack(value) == msgpack.packb(value, use_bin_type=True)


def test_a_failed_pack_leaves_nothing_behind() -> None:
    for unpackable in ({"a": [1, object()]}, [2**64]):
        with pytest.raises((TypeError, OverflowError)):
            pack(unpackable)
        assert pack({"x": 1}) == msgpack.packb({"x": 1}, use_bin_type=True)


JSON_LIKE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.floats()
    | st.sampled_from([1e-7, 1e16, 1e22, -0.0, 5e-324, 1.5e300])
    | st.text()
    | st.binary(max_size=3),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children)
        | st.dictionaries(st.text() | st.integers() | st.none(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON_LIKE)
def test_json_output_is_json_dumps_bytes_whichever_encoder_wrote_it(value: object) -> None:
    """orjson writes JSON output where it writes json.dumps's bytes; elsewhere json does
    (and fails where it fails)."""
    try:
        want: bytes | type[Exception] = json.dumps(
            value, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (TypeError, ValueError) as exc:  # bytes, a lone surrogate
        want = type(exc)
    try:
        got: bytes | type[Exception] = encode(value, "json")
    except (TypeError, ValueError) as exc:
        got = type(exc)
    assert got == want


def test_json_output_of_deep_values_and_float_forms() -> None:
    deep: list[object] = [1.0]
    for _ in range(300):
        deep = [deep]
    for value in (deep, [1e-7, {"a": 1e-05}], float("nan"), {"x": float("inf")}, 2**64):
        want = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        assert encode(value, "json") == want
