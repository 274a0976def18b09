"""The identity configuration file (CDP_IDENTITY_CONFIG): defaults, replacement, and
errors that name the line."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.identity.config import ConfigError, load, parse
from pipeline.resources import SHARED_DEVICES_CONFIG, schema_path

CUSTOM = """
max_graph_size = 3

[quarantine]
max_reassignments = 2
window_seconds = 60

[namespaces.member_no]
kind = "person"
priority = 1
unique = true
normalize = ["trim", "uppercase"]
format = 'M[0-9]{4}'

[namespaces.cookie]
kind = "cookie"
priority = 9
blocked = ["anonymous"]
"""


def test_the_shipped_defaults_are_the_contract_table() -> None:
    config = load()
    table = {n.name: (n.kind, n.unique, n.priority) for n in config.namespaces.values()}
    assert table == {
        "crm_id": ("person", True, 1),
        "loyalty_id": ("person", True, 2),
        "email": ("person", True, 3),
        "phone": ("person", False, 4),
        "device_id": ("device", False, 5),
        "ecid": ("cookie", False, 6),
    }
    assert config.max_graph_size == 50


def test_a_file_replaces_the_defaults_whole(tmp_path: Path) -> None:
    path = tmp_path / "identity.toml"
    path.write_text(CUSTOM)
    config = load(str(path))
    assert set(config.namespaces) == {"member_no", "cookie"}
    assert config.max_graph_size == 3
    assert (config.quarantine_max_reassignments, config.quarantine_window_s) == (2, 60)
    assert "anonymous" in config.namespaces["cookie"].blocked
    assert config.for_redis()["namespaces"]["member_no"] == {
        "kind": "person",
        "priority": 1,
        "unique": True,
        "follower": False,
        "counted": True,
    }


def test_no_namespace_follows_a_person_unless_the_file_asks() -> None:
    """CONTRACT 4.1 by default: the shipped file and a file without follower_kinds have
    no followers (the shared-device rule is opt-in); a namespace overrides its kind."""
    assert not any(n.follower for n in load().namespaces.values())
    assert not any(n.follower for n in parse(CUSTOM).namespaces.values())
    # follower_kinds = [...] turns the rule on; a namespace can opt out...
    off = parse(
        'follower_kinds = ["cookie"]\n'
        + CUSTOM.replace("priority = 9", "follower = false\npriority = 9")
    )
    assert not any(n.follower for n in off.namespaces.values())
    # ...or in alone.
    alone = parse(
        CUSTOM.replace('blocked = ["anonymous"]', "follower = true")
        + '[namespaces.tablet]\nkind = "device"\npriority = 5\n'
    )
    assert [n.name for n in alone.namespaces.values() if n.follower] == ["cookie"]


def test_the_shipped_shared_devices_file_is_the_default_with_the_rule_on() -> None:
    """schemas/identity.shared-devices.toml is a whole file (CDP_IDENTITY_CONFIG replaces
    the default whole): it may differ from the default only in its followers."""
    default, shared = load(), load(schema_path(SHARED_DEVICES_CONFIG))
    assert {n.name for n in shared.namespaces.values() if n.follower} == {"device_id", "ecid"}
    as_default = {n: dataclasses.replace(ns, follower=False) for n, ns in shared.namespaces.items()}
    assert dataclasses.replace(shared, namespaces=as_default) == default


def test_the_breaker_never_counts_a_device_or_a_cookie() -> None:
    """A shared device follows the last login (rule 4.2) however often people take turns,
    shared-device rule on or off; a follower of another kind is not counted either."""
    for config in (load(), load(schema_path(SHARED_DEVICES_CONFIG))):
        counted = {n.name for n in config.namespaces.values() if n.counted}
        assert counted == {"crm_id", "loyalty_id", "email", "phone"}
    alone = parse(CUSTOM.replace('kind = "person"', 'kind = "partner"\nfollower = true'))
    assert [n.name for n in alone.namespaces.values() if n.counted] == []


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (CUSTOM.replace('kind = "cookie"', 'kind = "biscuit"'), 16, "kind must be one of"),
        (CUSTOM.replace("priority = 9", "priority = 0"), 17, "priority"),
        (CUSTOM.replace("format = 'M[0-9]{4}'", "format = 'M[0-9'"), 13, "bad format regex"),
        (
            CUSTOM.replace('normalize = ["trim", "uppercase"]', 'normalize = ["shout"]'),
            12,
            "normalize",
        ),
        (CUSTOM + "\ncolour = 'blue'\n", None, "unknown key"),
        ('follower_kinds = ["tablet"]\n' + CUSTOM, 1, "follower_kinds"),
        (CUSTOM.replace('blocked = ["anonymous"]', 'follower = "yes"'), 18, "follower must be"),
        ("x = 1\nmax_graph_size = = 3\n", 2, ""),
        # Every value of the wrong shape is a ConfigError naming its line, never a
        # traceback, and never taken in silently (a string "no" for a flag is no false).
        (
            "quarantine = 5\n"
            + CUSTOM.replace("[quarantine]\n", "").replace("max_r", "#").replace("window", "#"),
            1,
            "quarantine must be a table",
        ),
        ("blocked = [1]\n" + CUSTOM, 1, "blocked must be a list of strings"),
        (
            CUSTOM.replace('blocked = ["anonymous"]', 'hash = "no"'),
            18,
            "hash must be true or false",
        ),
        (CUSTOM.replace('blocked = ["anonymous"]', 'default_region = "UK"'), 18, "default_region"),
        (CUSTOM.replace('blocked = ["anonymous"]', "default_region = 44"), 18, "default_region"),
        (CUSTOM.replace("format = 'M[0-9]{4}'", "format = 5"), 13, "format must be a string"),
        (
            CUSTOM.replace("max_reassignments = 2", "max_reassignments = true"),
            5,
            "max_reassignments",
        ),
        (CUSTOM.replace("window_seconds = 60", "window_seconds = false"), 6, "window_seconds"),
        # A misspelt setting would leave its default in force without a word.
        ("max_graph_sizes = 3\n" + CUSTOM, 1, "unknown key 'max_graph_sizes'"),
        (CUSTOM.replace("max_reassignments", "max_reassignment"), 5, "unknown key"),
    ],
)
def test_a_bad_file_names_the_line(text: str, line: int | None, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse(text, "identity.toml")
    message = str(error.value)
    assert message.startswith("identity.toml")
    if line is not None:
        assert f"line {line}" in message, message
    assert words in message


def test_a_worker_with_a_bad_file_stops_at_once_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "identity.toml"
    path.write_text(CUSTOM.replace("priority = 9", 'priority = "high"'))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "worker"],
        env={
            "PATH": "/usr/bin:/bin",
            "CDP_IDENTITY_CONFIG": str(path),
            "CDP_KAFKA_BOOTSTRAP": "127.0.0.1:1",
            "PYTHONPATH": str(Path.cwd()),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{path}, line 17" in done.stderr and "priority" in done.stderr


def test_a_region_is_read_in_either_case() -> None:
    config = parse(CUSTOM.replace('blocked = ["anonymous"]', 'default_region = "gb"'))
    assert config.namespaces["cookie"].default_region == "GB"


def test_null_and_undefined_are_blocked_whatever_the_file_lists() -> None:
    # CONTRACT 3 names them blocked values; a file with a list of its own keeps them.
    config = parse("blocked = ['n/a']\n" + CUSTOM)
    for namespace in config.namespaces.values():
        assert {"null", "undefined", "n/a"} <= namespace.blocked, namespace.name


def test_a_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    # What Windows editors write as "UTF-8": the mark is no TOML statement.
    path = tmp_path / "identity.toml"
    path.write_bytes(b"\xef\xbb\xbf" + CUSTOM.encode())
    assert set(load(str(path)).namespaces) == {"member_no", "cookie"}


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "identity.toml"
    path.write_bytes(CUSTOM.replace("anonymous", "anónimo").encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8"):
        load(str(path))
