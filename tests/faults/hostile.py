"""Generated hostile input (issue 6.5): each item says whether the pipeline must reject it
(dead letter) or take it, and which identities it must drop on the way."""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack

MAX_BYTES = 65_536  # CDP_MAX_EVENT_BYTES of the hostile-input worker


@dataclass
class Item:
    value: bytes | None
    reject: bool
    category: str
    envelope: dict[str, Any] | None = None  # for the valid ones
    drops: list[tuple[str, str]] = field(default_factory=list)  # (namespace label, reason)


def _ms(rng: random.Random) -> int:
    return int(time.time() * 1000) - rng.randrange(1, 3 * 3600_000)


def _valid(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "event_id": f"h-{n}",
        "timestamp": _ms(rng),
        "kind": "experience",
        "identities": [{"namespace": "crm_id", "id": f"H-{n % 700}"}],
        "event": {"type": "web.pageView"},
    }


def _pack(doc: Any) -> bytes:
    return msgpack.packb(doc, use_bin_type=True)


def _json(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def _either(rng: random.Random, doc: Any) -> bytes:
    if rng.random() < 0.5:
        try:
            return _pack(doc)
        except OverflowError:
            pass
    return _json(doc)


# -- must be rejected --------------------------------------------------------------------
def random_bytes(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(rng.randrange(1, 300))


def empty_or_null(rng: random.Random, n: int) -> bytes | None:
    return rng.choice([b"", None, b"   ", b"\xef\xbb\xbf", b"null", b"[]", b"42"])


def truncated(rng: random.Random, n: int) -> bytes:
    whole = _either(rng, _valid(rng, n))
    return whole[: rng.randrange(1, len(whole))]


def trailing(rng: random.Random, n: int) -> bytes:
    return _either(rng, _valid(rng, n)) + rng.choice([b"\x00", b"}", b"garbage", b"\xc0"])


def wrong_types(rng: random.Random, n: int) -> bytes:
    doc = _valid(rng, n)
    field_, value = rng.choice(
        [
            ("event_id", 12345),
            ("event_id", None),
            ("event_id", ["x"]),
            ("timestamp", [2026]),
            ("timestamp", {"at": 1}),
            ("timestamp", None),
            ("kind", 7),
            ("kind", "purchase"),
            ("identities", "crm_id:H-1"),
            ("identities", {"namespace": "crm_id", "id": "H-1"}),
            ("identities", [["crm_id", "H-1"]]),
            ("identities", [{"namespace": 5, "id": "H-1"}]),
            ("identities", [{"namespace": "crm_id", "id": 1.5}]),
            ("identities", [{"namespace": "crm_id"}]),
            ("identities", [{"namespace": "crm_id", "id": "H-1", "primary": "yes"}]),
            ("identities", []),
            ("attributes", [1, 2, 3]),
            ("attributes", "gold"),
            ("event", "click"),
            ("event", {"type": 5}),
            ("channel", 3),
            ("channel", "Web Shop!"),
            ("channel", "x" * 300),
        ]
    )
    doc[field_] = value
    if rng.random() < 0.2:
        del doc[rng.choice(["event_id", "timestamp", "kind", "identities"])]
    return _either(rng, doc)


def deep(rng: random.Random, n: int) -> bytes:
    depth = rng.choice([33, 34, 64, 500, 3000, 100_000])
    if rng.random() < 0.5:
        head = json.dumps(_valid(rng, n))[:-1]
        return (head + ', "attributes": {"a": ' + "[" * depth + "]" * depth + "}}").encode()
    # msgpack built by hand: the packer itself refuses deep input.
    body = _pack(_valid(rng, n))
    fixmap = body[0]
    nested = b"\x91" * min(depth, 5000) + b"\xc0"
    return bytes([fixmap + 1]) + body[1:] + _pack("attributes") + b"\x81\xa1a" + nested


def oversized(rng: random.Random, n: int) -> bytes:
    doc = _valid(rng, n)
    doc["attributes"] = {"blob": "x" * rng.randrange(MAX_BYTES + 1, 3 * MAX_BYTES)}
    return _either(rng, doc)


def too_many_identities(rng: random.Random, n: int) -> bytes:
    doc = _valid(rng, n)
    doc["identities"] = [
        {"namespace": "ecid", "id": f"tm-{n}-{i}"} for i in range(rng.randrange(21, 60))
    ]
    return _either(rng, doc)


def bad_timestamp(rng: random.Random, n: int) -> bytes:
    doc = _valid(rng, n)
    doc["timestamp"] = rng.choice(
        [
            "yesterday",
            "",
            "2026-13-45T10:00:00Z",
            "2026-11-28T14:45:21",  # no zone
            "2026-11-28  14:45:21Z",  # two spaces
            "1999-12-31T23:59:59Z",
            946_684_799_999,
            -1,
            2**63 - 1,
            10**30,  # JSON only: msgpack has no such integer
            int(time.time() * 1000) + 2 * 86_400_000,
            "9999-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            True,
            946_684_799_999.5,  # a fraction is dropped (c35fcc1): still before 2000
        ]
    )
    return _either(rng, doc)


def no_valid_identity(rng: random.Random, n: int) -> bytes:
    doc = _valid(rng, n)
    doc["identities"] = [
        rng.choice(
            [
                {"namespace": "email", "id": "null"},
                {"namespace": "email", "id": "test@test.com"},
                {"namespace": "crm_id", "id": "undefined"},
                {"namespace": "crm_id", "id": "   "},
                {"namespace": "device_id", "id": "00000000-0000-0000-0000-000000000000"},
                {"namespace": "phone", "id": "+1 555 555 5555"},
                {"namespace": "twitter", "id": "@someone"},
                {"namespace": "", "id": "x"},
                {"namespace": "crm_id", "id": "not a crm id!"},
                {"namespace": "crm_id", "id": "C" * 5000},  # huge value, within the limit
                {"namespace": "email", "id": "no-at-sign"},
            ]
        )
        for _ in range(rng.randrange(1, 4))
    ]
    return _either(rng, doc)


def conflicting_unique(rng: random.Random, n: int) -> bytes:
    doc = _valid(rng, n)
    ns = rng.choice(["crm_id", "email", "loyalty_id"])
    value = "a{}@example.com" if ns == "email" else "V-{}"
    doc["identities"] = [
        {"namespace": ns, "id": value.format(f"{n}x")},
        {"namespace": "ecid", "id": f"cu-{n}"},
        {"namespace": ns, "id": value.format(f"{n}y")},
    ]
    return _either(rng, doc)


def multiple_primary(rng: random.Random, n: int) -> bytes:
    doc = _valid(rng, n)
    doc["identities"] = [
        {"namespace": "crm_id", "id": f"MP-{n}", "primary": True},
        {"namespace": "ecid", "id": f"mp-{n}", "primary": True},
    ]
    return _either(rng, doc)


def bad_fields(rng: random.Random, n: int) -> bytes:
    doc = _valid(rng, n)
    field_, value = rng.choice(
        [("event_id", ""), ("event_id", "e" * 257), ("kind", "RECORD"), ("channel", "")]
    )
    doc[field_] = value
    return _either(rng, doc)


def unsupported(rng: random.Random, n: int) -> bytes:
    doc = _valid(rng, n)
    kind = rng.randrange(4)
    if kind == 0:
        doc["attributes"] = {"raw": b"\x00\x01"}  # msgpack bin
        return _pack(doc)
    if kind == 1:
        doc["attributes"] = {"x": math.nan}
        return _pack(doc)
    if kind == 2:
        doc["attributes"] = {1: "int key"}
        return msgpack.packb(doc, use_bin_type=True, strict_types=False)
    return _json(doc).replace(b'"web.pageView"', b"NaN")


def bad_utf8(rng: random.Random, n: int) -> bytes:
    return _json(_valid(rng, n)).replace(b"web.pageView", b"web.\xff\xfeView")


REJECTS: dict[str, Callable[[random.Random, int], bytes | None]] = {
    "random_bytes": random_bytes,
    "empty_or_null": empty_or_null,
    "truncated": truncated,
    "trailing": trailing,
    "wrong_types": wrong_types,
    "deep": deep,
    "too_many_identities": too_many_identities,
    "bad_timestamp": bad_timestamp,
    "no_valid_identity": no_valid_identity,
    "conflicting_unique": conflicting_unique,
    "multiple_primary": multiple_primary,
    "bad_fields": bad_fields,
    "unsupported": unsupported,
    "bad_utf8": bad_utf8,
}


# -- must be taken -----------------------------------------------------------------------
def partly_invalid(rng: random.Random, n: int) -> Item:
    """A good identity plus ones the pipeline must leave out (and count)."""
    doc = _valid(rng, n)
    bad, drops = [], []
    for _ in range(rng.randrange(1, 4)):
        ident, label, reason = rng.choice(
            [
                ({"namespace": "email", "id": "NULL"}, "email", "blocked_value"),
                ({"namespace": "email", "id": "test@test.com"}, "email", "blocked_value"),
                ({"namespace": "ecid", "id": ""}, "ecid", "blocked_value"),
                ({"namespace": "twitter", "id": "@x"}, "other", "unknown_namespace"),
                ({"namespace": "Email", "id": "a@b.co"}, "other", "unknown_namespace"),
                ({"namespace": "crm_id", "id": "has space"}, "crm_id", "bad_format"),
                ({"namespace": "phone", "id": "12"}, "phone", "bad_format"),
                ({"namespace": "ecid", "id": "k" * 2000}, "ecid", "bad_format"),
            ]
        )
        bad.append(ident)
        drops.append((label, reason))
    doc["identities"] = doc["identities"] + bad
    rng.shuffle(doc["identities"])
    return Item(_either(rng, doc), False, "partly_invalid", doc, drops)


def huge_but_allowed(rng: random.Random, n: int) -> Item:
    doc = _valid(rng, n)
    doc["identities"] = [{"namespace": "crm_id", "id": f"BIG-{n}"}]
    doc["attributes"] = {"note": "y" * rng.randrange(20_000, MAX_BYTES - 2_000)}
    return Item(_either(rng, doc), False, "huge_but_allowed", doc)


def plain(rng: random.Random, n: int) -> Item:
    doc = _valid(rng, n)
    doc["attributes"] = {"seen": n, "nested": {"deep": [1, {"k": "v"}]}}
    if rng.random() < 0.3:
        # A cookie of this person only: no unique-namespace conflict, so no order effects.
        doc["identities"].append({"namespace": "ecid", "id": f"hk-{n % 700}-{n % 3}"})
    return Item(_either(rng, doc), False, "plain", doc)


def generate(seed: int, bad: int, good: int) -> list[Item]:
    rng = random.Random(seed)
    names = list(REJECTS)
    items: list[Item] = []
    for n in range(bad):
        name = names[n % len(names)]
        items.append(Item(REJECTS[name](rng, 1_000_000 + n), True, name))
    # Oversized values are heavy: a bounded number of them.
    for n in range(max(1, bad // 1000)):
        items.append(Item(oversized(rng, 2_000_000 + n), True, "oversized"))
    for n in range(good):
        maker = partly_invalid if n % 5 == 0 else huge_but_allowed if n % 200 == 1 else plain
        items.append(maker(rng, n))
    rng.shuffle(items)
    return items


def expected_drops(items: list[Item]) -> Counter[tuple[str, str]]:
    return Counter(d for item in items for d in item.drops)
