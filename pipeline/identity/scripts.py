"""The Lua scripts as Redis runs them: each script of ``lua/`` with the includes it names.

An include is a ``--@include <name>`` line; each is loaded once, dependencies first, and
only into the scripts that use it (the lookup carries three small ones, the stitch all).
"""

from __future__ import annotations

import re
from functools import cache

from pipeline.identity import event_fields
from pipeline.resources import lua_text

INCLUDE = re.compile(r"^--@include (\w+)$", re.M)
GENERATED = {"event": event_fields.lua_table}  # includes made from Python definitions


def _include_text(name: str) -> str:
    generated = GENERATED.get(name)
    return generated() if generated else lua_text(f"includes/{name}.lua")


@cache
def script_source(name: str) -> str:
    """The script as Redis runs it: the includes it names (``--@include x``, resolved the
    same way in includes) once each, dependencies first, then the script."""
    parts: list[str] = []
    loaded: set[str] = set()

    def add(text: str) -> None:
        for dep in INCLUDE.findall(text):
            if dep not in loaded:
                loaded.add(dep)
                add(_include_text(dep))
        parts.append(text)

    add(lua_text(f"{name}.lua"))
    return "\n".join(parts)
