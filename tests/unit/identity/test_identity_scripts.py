"""The Lua scripts as scripts.py assembles them, and the one definition of a stitch event."""

from __future__ import annotations

import re

import msgpack

from pipeline.identity.arguments import StitchEvent, bucket, stitch_batch, stored_head
from pipeline.identity.commands import SCRIPTS
from pipeline.identity.event_fields import FIELDS, LISTS, lua_table
from pipeline.identity.scripts import script_source
from pipeline.resources import lua_text


def _includes_in(source: str) -> list[str]:
    """The includes a source carries, by their header's first line ("  name: ...")."""
    return re.findall(r"^--\[\[\n  (\w+): ", source, re.M)[:-1]  # the last is the script


def test_each_include_is_loaded_once_dependencies_first() -> None:
    stitch = _includes_in(script_source("stitch"))
    assert stitch == [
        "keyspace",
        "base",
        "blob",
        "config",
        "index",
        "results",
        "graph",
        "rebuild",
        "dedupe",
    ]
    assert script_source("stitch").count("local EVENT = {") == 1


def test_scripts_carry_only_what_they_use() -> None:
    assert _includes_in(script_source("lookup")) == ["keyspace", "base", "index"]
    assert _includes_in(script_source("quarantined")) == ["keyspace", "base"]
    for name in ("overview", "tally"):
        assert _includes_in(script_source(name)) == ["keyspace"]
    assert _includes_in(script_source("read")) == ["keyspace", "base", "index", "blob"]


def test_every_script_has_its_header() -> None:
    for name in SCRIPTS:
        header = lua_text(f"{name}.lua").split("]]")[0]
        for part in ("KEYS[1]:", "ARGV[1]:", "ARGV[2]:", "Returns:", "Effects:"):
            assert part in header, (name, part)


def test_a_header_calls_argv_1_unused_exactly_when_the_script_does_not_read_it() -> None:
    """commands.py sends every script its ARGV[1]; only those that decode it may say what
    it holds."""
    for name in SCRIPTS:
        header = lua_text(f"{name}.lua").split("]]")[0]
        (argv_1,) = re.findall(r"ARGV\[1\]: (.*)", header)
        reads = "cmsgpack.unpack(ARGV[1])" in script_source(name)
        assert argv_1.endswith("(unused)") != reads, (name, argv_1)


def test_every_key_is_named_in_the_declared_slot() -> None:
    """Keys are built from P (KEYS[1] and a colon), never spelled out: a script touches
    only the slot it declares, which a Redis Cluster requires."""
    for name in SCRIPTS:
        source = script_source(name)
        assert source.index("local P = KEYS[1] .. ':'") < source.index("redis.call"), name
        assert not re.search(r"""['"]cdp:""", source), name
        # Key variables (hash, done_key, bucket_key, graph_key, timeline, DEDUPE_*, window,
        # legacy_keys, blob) are built from P where set.
        allowed = (
            "P ..",
            "hash",
            "done_key",
            "bucket_key",
            "graph_key",
            "timeline",
            "DEDUPE_",
            "window",
            "unpack(legacy_keys",
            "blob",
        )
        for key in re.findall(r"redis\.call\('\w+', ([^,)]+)", source):
            assert key.startswith(allowed), (name, key)


def test_the_stitch_event_is_sent_in_the_defined_order() -> None:
    event = StitchEvent(
        event_id="e1",
        timestamp_ms=1_700_000_000_123,
        channel="web",
        type="page",
        identities=["email:a@b.c", "ecid:1"],
        primary="email:a@b.c",
        attributes={"tier": msgpack.packb("gold")},
        summary=b"s",
        topic="cdp.events.web",
        partition=3,
        offset=42,
    )
    sent = stitch_batch([event, event])
    assert sent[: len(sent) // 2] == sent[len(sent) // 2 :]  # one event after the other
    fields, lists = sent[: len(FIELDS)], sent[len(FIELDS) : len(sent) // 2]
    assert dict(zip(FIELDS, fields, strict=True)) == {
        "event_id": "e1",
        "timestamp_ms": 1_700_000_000_123,
        "channel": "web",
        "type": "page",
        "primary": "email:a@b.c",
        "summary": b"s",
        "topic": "cdp.events.web",
        "partition": 3,
        "offset": 42,
        "timestamp_text": "1700000000123",
        "bucket": bucket("email:a@b.c"),
    }
    assert LISTS == ("identities", "attributes")
    head = stored_head(msgpack.packb("gold"), 1_700_000_000_123)
    assert lists == [2, "email:a@b.c", "ecid:1", 2, "tier", head]


def test_an_attribute_is_stored_as_its_head_and_packed_seq() -> None:
    """The script stores an attribute as the head the batch carries followed by its seq
    packed: the fragment value {value, ts, seq} that read and publish decode."""
    for value in (b"\xa4gold", b"x" * 40, b"y" * 70_000):
        for ts in (0, 5, 1_700_000_000_123):
            stored = stored_head(value, ts) + msgpack.packb(123_456)
            assert msgpack.unpackb(stored, raw=True) == [value, ts, 123_456]


def test_the_lua_table_names_each_position() -> None:
    table = lua_table()
    positions = dict(re.findall(r"(\w+) = (\d+)", table))
    assert positions == {name: str(i) for i, name in enumerate(FIELDS, 1)}
    assert f"local identities = o + {len(FIELDS) + 1}" in table
    assert "local attributes = identities + batch[identities] + 1" in table
