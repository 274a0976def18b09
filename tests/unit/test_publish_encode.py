"""Output encoding and its content-type header (issue 10)."""

from __future__ import annotations

import msgpack
import pytest

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
