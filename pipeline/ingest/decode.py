"""Record value bytes -> a JSON-like dict, from msgpack or UTF-8 JSON, told apart by the
first byte.

Hostile input is expected: every failure is a ``Rejected``, nesting is bounded without
recursion, and only JSON-representable values get through, so JSON and msgpack
producers are treated alike downstream.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

import msgpack
import orjson

from pipeline.model import Rejected

MAX_DEPTH = 32

_BOM = b"\xef\xbb\xbf"
_JSON_SPACE = b" \t\r\n"
# fixmap, map16, map32: the only ways a msgpack value can start as a map.
_MSGPACK_MAP = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}
# msgpack (Redis, the profile topic) and the API's JSON encoder hold integers in 64 bits.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
# A JSON string, or one bracket: strings are skipped so brackets inside them don't count.
# Bytes are fine: '"', '\\' and brackets never occur inside a UTF-8 multi-byte sequence.
_JSON_STRUCTURE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)
# Only a \uD800-\uDFFF escape can put a lone surrogate (not text: UTF-8 cannot hold it)
# into a string json.loads returns; the few values with such an escape are checked whole.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# orjson reads an integer beyond 64 bits as a float, and 64 bits need at most 20 digits
# (19 below 2**63): a value with a run of 19 digits anywhere (a string's too) takes the
# json path, which refuses such integers by name. translate + find is ~0.5 us an event;
# a regex search for the run was 3.
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_NUMBER = b"0" * 19
_OPEN = frozenset((b"{", b"["))
_CLOSE = frozenset((b"}", b"]"))
_MSGPACK_ERRORS = (
    msgpack.UnpackException,  # FormatError, StackError, ExtraData (also ValueErrors)
    ValueError,  # incomplete input, UnicodeDecodeError, bad map keys, bad timestamp ext
    TypeError,
    OverflowError,
)


def decode_value(raw: bytes | None, max_bytes: int) -> dict[str, Any]:
    """The map a record value holds, or ``Rejected`` saying why there is none."""
    if raw is None:
        raise Rejected("null_value", "the record has no value")
    if len(raw) > max_bytes:
        raise Rejected("oversized", f"{len(raw)} bytes, at most {max_bytes}")
    if raw and raw[0] in _MSGPACK_MAP:
        value = _unpack_msgpack(raw, max_bytes)
    elif raw.removeprefix(_BOM).lstrip(_JSON_SPACE)[:1] == b"{":
        value, numbers_checked = _load_json(raw)
        if numbers_checked:
            # json.loads makes only JSON types with string keys and _load_json bounds the
            # depth, so the walk (a fifth of ingesting an event) would find nothing.
            return value
    else:
        raise Rejected(
            "not_an_object",
            f"a value must be a JSON object or a msgpack map; this one {_what_it_is(raw)}",
        )
    _check_tree(value)
    return value


def _what_it_is(raw: bytes) -> str:
    """What a value that is no map starts as, in words a producer recognises."""
    text = raw.removeprefix(_BOM).lstrip(_JSON_SPACE)
    if not text:
        return "is empty"
    kinds = {b"[": "a JSON array", b'"': "a JSON string", b"-": "a number"}
    kind = kinds.get(text[:1]) or ("a number" if text[:1].isdigit() else None)
    if kind is not None:
        return f"is {kind}"
    if 0x20 < raw[0] < 0x7F:
        return f"starts with {chr(raw[0])!r} (0x{raw[0]:02x})"
    return f"starts with byte 0x{raw[0]:02x}"


def _unpack_msgpack(raw: bytes, max_bytes: int) -> dict[str, Any]:
    try:
        value = msgpack.unpackb(
            raw,
            raw=False,
            strict_map_key=True,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            max_array_len=max_bytes,
            max_map_len=max_bytes,
            max_ext_len=max_bytes,
        )
    except msgpack.StackError as exc:
        raise Rejected("too_deep", f"msgpack nested too deeply, at most {MAX_DEPTH}") from exc
    except msgpack.ExtraData as exc:
        raise Rejected("undecodable", "msgpack map followed by extra bytes") from exc
    except _MSGPACK_ERRORS as exc:
        if "for map key" in str(exc):  # strict_map_key refused an int, float, bool or nil key
            raise Rejected("bad_key", "a map key is not a string") from exc
        raise Rejected("undecodable", f"not valid msgpack: {exc}") from exc
    stamp = value.get("timestamp")  # a map: its first byte said so
    if isinstance(stamp, msgpack.Timestamp):
        # msgpack's own time type (ext -1, what Go's and Java's encoders make of a time) is
        # a time as surely as epoch ms are; elsewhere in an event it stays unsupported.
        value["timestamp"] = stamp.to_unix_nano() // 1_000_000
    return value


def _check_json_depth(raw: bytes) -> None:
    depth = 0
    for token in _JSON_STRUCTURE.finditer(raw):
        if token.group() in _OPEN:
            depth += 1
            if depth > MAX_DEPTH:
                raise Rejected("too_deep", f"JSON nested more than {MAX_DEPTH} levels")
        elif token.group() in _CLOSE:
            depth -= 1


class _Refused(Exception):
    """A number _check_tree refuses, met while parsing: the walk then says where."""


def _int64(text: str) -> int:
    value = int(text)
    if not _INT_MIN <= value <= _INT_MAX:
        raise _Refused
    return value


def _finite(text: str) -> float:
    value = float(text)  # a literal too large for a double (1e400) is an infinity
    if not math.isfinite(value):
        raise _Refused
    return value


def _refuse(text: str) -> float:
    raise _Refused  # NaN, Infinity, -Infinity


_CHECKED_NUMBERS = json.JSONDecoder(parse_int=_int64, parse_float=_finite, parse_constant=_refuse)


def _load_json(raw: bytes) -> tuple[dict[str, Any], bool]:
    """The object and whether its numbers were checked while parsing (else by the walk)."""
    # Depth is checked before parsing so json never recurses deeper than MAX_DEPTH.
    # No more brackets in all (strings' included) than MAX_DEPTH cannot nest deeper:
    # counting them is far cheaper than tokenizing, and holds for nearly every event.
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH:
        _check_json_depth(raw)
    if _LONG_NUMBER not in raw.translate(_DIGITS_AS_ZERO):
        # orjson (a third of json's time with number hooks) accepts a subset of what the
        # json path does, with the same values: strict UTF-8 and JSON, no lone surrogate,
        # no NaN or infinity, integers within 64 bits (the check above). Whatever it
        # refuses (a BOM too) goes the json path, whose messages say why.
        try:
            return orjson.loads(raw), True
        except orjson.JSONDecodeError:
            pass
    return _load_json_checked(raw)


def _load_json_checked(raw: bytes) -> tuple[dict[str, Any], bool]:
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
        try:
            value, checked = _CHECKED_NUMBERS.decode(text), True
        except _Refused:
            value, checked = json.loads(text), False
    except UnicodeDecodeError as exc:
        raise Rejected("undecodable", f"not UTF-8: {exc.reason} at byte {exc.start}") from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, too many int digits
        raise Rejected("undecodable", f"not valid JSON: {exc}") from exc
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise Rejected(
                "undecodable", f"a string holds an unpaired UTF-16 surrogate escape: {exc}"
            ) from exc
    return value, checked  # an object: it starts with "{"


def _check_tree(root: dict[str, Any]) -> None:
    """Bounded depth, string keys, JSON types only, integers of at most 64 bits;
    iterative, so no recursion limit."""
    stack: list[tuple[dict[str, Any] | list[Any], str, int]] = [(root, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Rejected("too_deep", f"{path} is nested more than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            if not all(isinstance(key, str) for key in node):
                raise Rejected(
                    "bad_key", f"{path or 'the value'} has a map key that is not a string"
                )
            pairs: Iterable[tuple[str | int, Any]] = node.items()
        else:
            pairs = enumerate(node)
        for label, child in pairs:
            if isinstance(child, dict | list):
                stack.append((child, _join(path, label), depth + 1))
            elif isinstance(child, float) and not math.isfinite(child):
                raise Rejected("unsupported_type", f"{_join(path, label)} is {child}")
            elif isinstance(child, int) and not _INT_MIN <= child <= _INT_MAX:
                raise Rejected(
                    "unsupported_type",
                    f"{_join(path, label)} is an integer beyond 64 bits, which msgpack "
                    "cannot hold; send it as a string",
                )
            elif not (child is None or isinstance(child, str | int | float)):
                name = type(child).__name__
                raise Rejected(
                    "unsupported_type", f"{_join(path, label)} is {name}, which JSON cannot hold"
                )


def _join(path: str, label: str | int) -> str:
    if isinstance(label, int):
        return f"{path}[{label}]"
    return f"{path}.{label}" if path else label
