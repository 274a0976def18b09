"""Runtime data shipped inside the package: the JSON Schemas and default identity
configuration (``pipeline.schemas``, the repository's ``schemas/``) and the Lua scripts.

Read through ``importlib.resources`` so a worker installed from the wheel finds them as
one run from the checkout does; nothing here knows where the checkout is.
"""

from __future__ import annotations

from importlib.resources import files

DEFAULT_IDENTITY_CONFIG = "identity.default.toml"
# The default with the opt-in shared-device rule on, for CDP_IDENTITY_CONFIG.
SHARED_DEVICES_CONFIG = "identity.shared-devices.toml"


def schema_text(name: str) -> str:
    """A file of ``schemas/`` (JSON Schema, OpenAPI, the default identity TOML)."""
    return files("pipeline.schemas").joinpath(name).read_text(encoding="utf-8")


def schema_path(name: str) -> str:
    """Where a file of ``schemas/`` is, for CDP_IDENTITY_CONFIG (the package is a folder:
    setuptools installs it so, from the checkout or the wheel)."""
    return str(files("pipeline.schemas").joinpath(name))


def lua_text(name: str) -> str:
    """A Lua file under ``pipeline/identity/lua/`` (``name`` may be ``includes/x.lua``)."""
    return files("pipeline.identity").joinpath("lua", name).read_text(encoding="utf-8")
