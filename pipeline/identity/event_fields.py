"""The fields of a stitch event as the stitch script reads them, defined once.

``commands.stitch_batch`` sends each event as a list in this order (a list, not a map:
no field names in every event of every batch), and the Lua side reads it through the
generated table ``EVENT`` (``e[EVENT.topic]``), which scripts get with
``--@include event``.
"""

from __future__ import annotations

from typing import Any

FIELDS = (
    "event_id",
    "timestamp_ms",
    "channel",
    "type",
    "identities",  # identity keys, primary included
    "primary",
    "attributes",  # flat {path, msgpack value, ...}
    "summary",  # the timeline entry, opaque to Redis
    "topic",
    "partition",
    "offset",
    "timestamp_text",  # timestamp_ms in decimal: converting numbers costs Lua microseconds
)


def lua_table() -> str:
    """The Lua include ``event``: field name -> position in the event list."""
    entries = ", ".join(f"{name} = {i}" for i, name in enumerate(FIELDS, 1))
    return f"-- Generated from pipeline/identity/event_fields.py.\nlocal EVENT = {{{entries}}}\n"


def as_list(fields: dict[str, Any]) -> list[Any]:
    """An event's values in the order of FIELDS."""
    return [fields[name] for name in FIELDS]
