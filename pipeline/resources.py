"""Runtime data shipped inside the package: the JSON Schemas and default identity
configuration (``pipeline.schemas``, the repository's ``schemas/``) and the Lua scripts.

Read through ``importlib.resources`` so a worker installed from the wheel finds them as
one run from the checkout does; nothing here knows where the checkout is.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

DEFAULT_IDENTITY_CONFIG = "identity.default.toml"
# The default with the opt-in shared-device rule on, for CDP_IDENTITY_CONFIG.
SHARED_DEVICES_CONFIG = "identity.shared-devices.toml"


@dataclass(frozen=True)
class PackagedConfig:
    """An identity configuration of ``schemas/`` that CDP_IDENTITY_CONFIG may name."""

    name: str
    file: str
    summary: str


PACKAGED_CONFIGS = (
    PackagedConfig(
        "default",
        DEFAULT_IDENTITY_CONFIG,
        "CONTRACT 4.1's connected set: the identities of one event are linked, devices too",
    ),
    PackagedConfig(
        "shared-devices",
        SHARED_DEVICES_CONFIG,
        "the default plus the opt-in shared-device rule: a device or cookie follows one person",
    ),
)


def packaged_config(name: str) -> PackagedConfig | None:
    return next((c for c in PACKAGED_CONFIGS if c.name == name), None)


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
