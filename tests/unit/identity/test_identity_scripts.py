"""The Lua scripts as commands.py assembles them, and the one definition of a stitch event."""

from __future__ import annotations

import re

import msgpack

from pipeline.identity.commands import SCRIPTS, StitchEvent, script_source, stitch_batch
from pipeline.identity.event_fields import FIELDS, lua_table
from pipeline.resources import lua_text


def _includes_in(source: str) -> list[str]:
    """The includes a source carries, by their header's first line ("  name: ...")."""
    return re.findall(r"^--\[\[\n  (\w+): ", source, re.M)[:-1]  # the last is the script


def test_each_include_is_loaded_once_dependencies_first() -> None:
    stitch = _includes_in(script_source("stitch"))
    assert stitch == ["base", "config", "index", "results", "graph", "rebuild"]
    assert script_source("stitch").count("local EVENT = {") == 1


def test_scripts_carry_only_what_they_use() -> None:
    assert _includes_in(script_source("lookup")) == ["base", "index"]
    assert _includes_in(script_source("quarantined")) == ["base"]
    for name in ("overview", "tally"):
        assert script_source(name) == lua_text(f"{name}.lua")
    assert "local function partition" not in script_source("read")


def test_every_script_has_its_header() -> None:
    for name in SCRIPTS:
        header = lua_text(f"{name}.lua").split("]]")[0]
        for part in ("KEYS:", "ARGV[1]:", "ARGV[2]:", "Returns:", "Effects:"):
            assert part in header, (name, part)


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
    [sent] = stitch_batch([event])
    assert dict(zip(FIELDS, sent, strict=True)) == {
        "event_id": "e1",
        "timestamp_ms": 1_700_000_000_123,
        "channel": "web",
        "type": "page",
        "identities": ["email:a@b.c", "ecid:1"],
        "primary": "email:a@b.c",
        "attributes": ["tier", msgpack.packb("gold")],
        "summary": b"s",
        "topic": "cdp.events.web",
        "partition": 3,
        "offset": 42,
        "timestamp_text": "1700000000123",
    }


def test_the_lua_table_names_each_position() -> None:
    table = lua_table()
    positions = dict(re.findall(r"(\w+) = (\d+)", table))
    assert positions == {name: str(i) for i, name in enumerate(FIELDS, 1)}
