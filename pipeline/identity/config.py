"""The identity configuration (CONTRACT 4): namespaces, limits and circuit breaker.

Loaded from TOML with the standard library; a bad file fails at start with a message
that names the offending line.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import phonenumbers

from pipeline.resources import PACKAGED_CONFIGS, packaged_config, schema_path, schema_text

KINDS = ("person", "device", "cookie", "partner")
# Kinds the circuit breaker never counts: a device or cookie changes hands as rule 4.2's
# rebuild says (a family tablet follows the last login), shared-device rule on or off.
ROAMING_KINDS = ("device", "cookie")
NORMALIZERS = ("trim", "lowercase", "uppercase", "e164", "digits")
NAMESPACE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Rank of an identity whose namespace is not configured (left in Redis by an earlier
# configuration): after every configured one. The scripts get it through for_redis().
UNKNOWN_PRIORITY = 1_000_000
# Blocked in every namespace whatever a file lists: CONTRACT 3 names them (with empty,
# which normalising blocks itself), and no producer means a person by them.
ALWAYS_BLOCKED = ("null", "undefined")
TOP_KEYS = ("max_graph_size", "blocked", "follower_kinds", "quarantine", "namespaces")
QUARANTINE_KEYS = ("max_reassignments", "window_seconds")


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names file and line."""


@dataclass(frozen=True)
class Namespace:
    name: str
    kind: str
    priority: int
    unique: bool
    normalize: tuple[str, ...] = ("trim",)
    format: re.Pattern[str] | None = None
    blocked: frozenset[str] = frozenset()
    hash: bool = False
    default_region: str = "US"
    # The opt-in shared-device rule (follower_kinds): a follower follows one person and
    # never joins two parts of a graph that each hold a non-follower identity.
    follower: bool = False

    @property
    def counted(self) -> bool:
        """Whether the circuit breaker counts this identity's moves between persons."""
        return not (self.follower or self.kind in ROAMING_KINDS)


@dataclass(frozen=True)
class IdentityConfig:
    namespaces: dict[str, Namespace]
    max_graph_size: int = 50
    quarantine_max_reassignments: int = 5
    quarantine_window_s: int = 86400

    def priority(self, namespace: str) -> int:
        return self.namespaces[namespace].priority

    def for_redis(self) -> dict[str, Any]:
        """What the Lua operations need to know, as one msgpack-able map."""
        return {
            "namespaces": {
                n.name: {
                    "kind": n.kind,
                    "priority": n.priority,
                    "unique": n.unique,
                    "follower": n.follower,
                    "counted": n.counted,
                }
                for n in self.namespaces.values()
            },
            "unknown_priority": UNKNOWN_PRIORITY,
            "max_graph_size": self.max_graph_size,
            "quarantine_max": self.quarantine_max_reassignments,
            "quarantine_window_ms": self.quarantine_window_s * 1000,
        }


def _line_of(text: str, needle: str, table: str | None) -> int | None:
    """The first line holding ``needle``, inside ``[table]`` when one is named."""
    inside = table is None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if table is not None and stripped.startswith("["):
            if stripped == f"[{table}]":
                inside = True
                if needle.startswith("["):
                    return number
                continue
            if inside:
                return None
        if inside and needle in line:
            return number
    return None


def _fail(path: str, text: str, needle: str, message: str, table: str | None = None) -> ConfigError:
    line = _line_of(text, needle, table)
    where = f"{path}, line {line}" if line else path
    return ConfigError(f"{where}: {message}")


def _namespace(
    path: str, text: str, name: str, raw: Any, common_blocked: set[str], followers: set[str]
) -> Namespace:
    header = f"[namespaces.{name}]"

    def fail(needle: str, message: str) -> ConfigError:
        # Keys repeat from table to table: look for the line inside this namespace's.
        return _fail(path, text, needle, message, table=f"namespaces.{name}")

    if not NAMESPACE_NAME.match(name):
        raise fail(header, f"namespace name {name!r} must match {NAMESPACE_NAME.pattern}")
    if not isinstance(raw, dict):
        raise fail(header, f"namespace {name!r} must be a table")
    known = {
        "kind",
        "priority",
        "unique",
        "normalize",
        "format",
        "blocked",
        "hash",
        "default_region",
        "follower",
    }
    for key in raw:
        if key not in known:
            raise fail(key, f"namespace {name!r}: unknown key {key!r}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise fail("kind", f"namespace {name!r}: kind must be one of {KINDS}")
    priority = raw.get("priority")
    if not isinstance(priority, int) or isinstance(priority, bool) or priority < 1:
        raise fail("priority", f"namespace {name!r}: priority must be an integer >= 1")
    unique = raw.get("unique", False)
    if not isinstance(unique, bool):
        raise fail("unique", f"namespace {name!r}: unique must be true or false")
    normalize = raw.get("normalize", ["trim"])
    if not isinstance(normalize, list) or any(step not in NORMALIZERS for step in normalize):
        raise fail(
            "normalize",
            f"namespace {name!r}: normalize steps must be among {NORMALIZERS}",
        )
    pattern = raw.get("format")
    compiled = None
    if pattern is not None:
        if not isinstance(pattern, str):
            raise fail("format", f"namespace {name!r}: format must be a string (a regex)")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise fail("format", f"namespace {name!r}: bad format regex: {exc}") from exc
    blocked = raw.get("blocked", [])
    if not isinstance(blocked, list) or not all(isinstance(b, str) for b in blocked):
        raise fail("blocked", f"namespace {name!r}: blocked must be a list of strings")
    follower = raw.get("follower", kind in followers)
    hashed = raw.get("hash", False)
    for key, flag in (("follower", follower), ("hash", hashed)):
        if not isinstance(flag, bool):
            raise fail(key, f"namespace {name!r}: {key} must be true or false")
    # phonenumbers knows a region by its upper-case ISO code and takes an unknown one as
    # no region: every number written without a country code would then be bad_format.
    region = raw.get("default_region", "US")
    if not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise fail(
            "default_region",
            f"namespace {name!r}: default_region must be a two-letter region code such as US or GB",
        )
    return Namespace(
        name=name,
        kind=kind,
        priority=priority,
        unique=unique,
        normalize=tuple(normalize),
        format=compiled,
        blocked=frozenset(b.casefold() for b in [*blocked, *common_blocked, *ALWAYS_BLOCKED]),
        hash=hashed,
        default_region=region.upper(),
        follower=follower,
    )


def parse(text: str, path: str = "<config>") -> IdentityConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    namespaces_raw = raw.get("namespaces")
    if not isinstance(namespaces_raw, dict) or not namespaces_raw:
        raise _fail(path, text, "[namespaces", "at least one [namespaces.<name>] table is needed")
    # A misspelt setting would leave its default in force without a word.
    for key in raw:
        if key not in TOP_KEYS:
            raise _fail(path, text, key, f"unknown key {key!r}; the keys are {TOP_KEYS}")
    common = raw.get("blocked", [])
    if not isinstance(common, list) or not all(isinstance(b, str) for b in common):
        raise _fail(path, text, "blocked", "blocked must be a list of strings")
    # None unless the file asks: CONTRACT 4.1 links every identity of an event, devices too.
    followers = raw.get("follower_kinds", [])
    if not isinstance(followers, list) or any(kind not in KINDS for kind in followers):
        raise _fail(
            path, text, "follower_kinds", f"follower_kinds must be a list of kinds among {KINDS}"
        )
    namespaces = {
        name: _namespace(path, text, name, spec, set(common), set(followers))
        for name, spec in namespaces_raw.items()
    }
    size = raw.get("max_graph_size", 50)
    if not _whole(size, 2):
        raise _fail(path, text, "max_graph_size", "max_graph_size must be an integer >= 2")
    quarantine = raw.get("quarantine", {})
    if not isinstance(quarantine, dict):
        raise _fail(path, text, "quarantine", "quarantine must be a table ([quarantine])")
    for key in quarantine:
        if key not in QUARANTINE_KEYS:
            raise _fail(
                path,
                text,
                key,
                f"[quarantine]: unknown key {key!r}; the keys are {QUARANTINE_KEYS}",
            )
    max_moves = quarantine.get("max_reassignments", 5)
    window = quarantine.get("window_seconds", 86400)
    if not _whole(max_moves, 1):
        raise _fail(path, text, "max_reassignments", "max_reassignments must be an integer >= 1")
    if not _whole(window, 1):
        raise _fail(path, text, "window_seconds", "window_seconds must be an integer >= 1")
    return IdentityConfig(namespaces, size, max_moves, window)


def _whole(value: Any, least: int) -> bool:
    """An integer of at least ``least``; TOML's true and false are no numbers here."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def read(value: str | None) -> tuple[str, str]:
    """Where the configuration that ``value`` (CDP_IDENTITY_CONFIG) names is, and its
    text: a file, or else a packaged configuration by name (``shared-devices``); the
    packaged default without a value. A file wins over a name, so every path that
    worked before names the same file."""
    name = value or "default"
    packaged = packaged_config(name)
    if packaged is not None and not (value and Path(value).exists()):
        return schema_path(packaged.file), schema_text(packaged.file)
    try:
        # utf-8-sig: Windows editors start "UTF-8" with a byte order mark, no TOML.
        return name, Path(name).read_text(encoding="utf-8-sig")
    except OSError as exc:
        names = ", ".join(c.name for c in PACKAGED_CONFIGS)
        raise ConfigError(
            f"cannot read identity configuration {name}: {exc} (or name a packaged one: "
            f"{names}; `cdp config identity --list`)"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: a TOML file is UTF-8; byte {exc.start} is not") from exc


def load(path: str | None = None) -> IdentityConfig:
    """The configuration CDP_IDENTITY_CONFIG names (see ``read``), else the default."""
    where, text = read(path)
    return parse(text, where)
