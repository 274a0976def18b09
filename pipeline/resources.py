"""Runtime data shipped inside the package: the JSON Schemas and default identity
configuration (``pipeline.schemas``, the repository's ``schemas/``) and the Lua scripts.

Read through ``importlib.resources`` so a worker installed from the wheel finds them as
one run from the checkout does; nothing here knows where the checkout is.
"""

from __future__ import annotations

from importlib.resources import files

DEFAULT_IDENTITY_CONFIG = "identity.default.toml"


def schema_text(name: str) -> str:
    """A file of ``schemas/`` (JSON Schema, OpenAPI, the default identity TOML)."""
    return files("pipeline.schemas").joinpath(name).read_text(encoding="utf-8")


def lua_text(name: str) -> str:
    """A Lua file under ``pipeline/identity/lua/`` (``name`` may be ``includes/x.lua``)."""
    return files("pipeline.identity").joinpath("lua", name).read_text(encoding="utf-8")
