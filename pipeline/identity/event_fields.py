"""The fields of a stitch event as the stitch script reads them, defined once.

``arguments.stitch_batch`` sends a batch as one flat list: per event the values of FIELDS
in this order, then each of LISTS as its length and its items. No field names travel,
and no table per event or per list: Redis's cmsgpack grows every table it builds from
empty, which made unpacking a batch of nested lists cost twice as much. The Lua side
reads a field at its event's offset through the generated table ``EVENT``
(``BATCH[o + EVENT.topic]``) and finds the lists with the generated ``event_lists``;
scripts get both with ``--@include event``.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

FIELDS = (
    "event_id",
    "timestamp_ms",
    "channel",
    "type",
    "primary",
    "summary",  # the timeline entry, opaque to Redis
    "topic",
    "partition",
    "offset",
    "timestamp_text",  # timestamp_ms in decimal: converting numbers costs Lua microseconds
    "bucket",  # the index bucket of the first identity, in decimal (the common event's read)
)
LISTS = (
    "identities",  # identity keys, primary included
    "attributes",  # flat {path, stored value less its seq (arguments.stored_head), ...}
)


def lua_table() -> str:
    """The Lua include ``event``: field name -> position after the event's offset, and
    ``event_lists(batch, o)``: the position of each list's length, then the next event's
    offset."""
    entries = ", ".join(f"{name} = {i}" for i, name in enumerate(FIELDS, 1))
    lines = [
        "-- Generated from pipeline/identity/event_fields.py.",
        f"local EVENT = {{{entries}}}",
        "local function event_lists(batch, o)",
        f"  local {LISTS[0]} = o + {len(FIELDS) + 1}",
    ]
    lines += [f"  local {name} = {prev} + batch[{prev}] + 1" for prev, name in pairwise(LISTS)]
    lines += [f"  return {', '.join(LISTS)}, {LISTS[-1]} + batch[{LISTS[-1]}]", "end", ""]
    return "\n".join(lines)


def flatten(fields: dict[str, Any]) -> list[Any]:
    """An event's values as the batch carries them: FIELDS in order, then each list's
    length and items."""
    flat = [fields[name] for name in FIELDS]
    for name in LISTS:
        flat += [len(fields[name]), *fields[name]]
    return flat
