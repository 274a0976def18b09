"""Nested attributes <-> flat attribute paths, the unit the profile merge works on.

``{"loyalty": {"tier": "gold"}}`` <-> ``{"loyalty.tier": "gold"}``. Lists and scalars
are leaves, and so is an empty object: ``{"prefs": {}}`` stays ``{"prefs": {}}``, so
that a producer that clears an object is heard and ``unflatten(flatten(a)) == a``.
A key's own ``.`` and ``\\`` are escaped as ``\\.`` and ``\\\\``, so paths never collide.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

_LEAVES = frozenset((str, int, float, bool, list, type(None)))


def escape_key(key: str) -> str:
    return key.replace("\\", "\\\\").replace(".", "\\.")


def split_path(path: str) -> list[str]:
    """A flat path's keys, unescaped: ``split_path("a\\\\.b.c") == ["a.b", "c"]``."""
    if "\\" not in path:  # nothing escaped, as in nearly every path: each "." splits
        return path.split(".")
    keys: list[str] = []
    current: list[str] = []
    chars = iter(path)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ".":
            keys.append("".join(current))
            current = []
        else:
            current.append(char)
    keys.append("".join(current))
    return keys


def flatten_attributes(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Nested objects -> ``{"dotted.path": leaf}``, in the objects' order.

    Recursive: decode_value bounds every ingested value to 32 levels.
    """
    flat: dict[str, Any] = {}
    for key, value in attrs.items():
        # A JSON leaf's type spares the Mapping check (an ABC's, a Python call each).
        if type(value) not in _LEAVES and isinstance(value, Mapping) and value:
            for path, leaf in flatten_attributes(value).items():
                flat[f"{escape_key(key)}.{path}"] = leaf
        else:
            flat[escape_key(key)] = value
    return flat


def unflatten_attributes(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of ``flatten_attributes``.

    Where one path is a prefix of another (``a`` = 1 and ``a.b`` = 2, as a merge of
    fragments can leave), the later one in ``flat``'s order wins, so a caller that
    orders paths oldest first gets the newest shape.
    """
    root: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = split_path(path)
        node = root
        for key in parents:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        # A copy, so that a later, deeper path never writes into the caller's object.
        node[leaf] = copy.deepcopy(value) if isinstance(value, dict) else value
    return root
