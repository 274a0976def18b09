"""Packaged identity configurations by name: CDP_IDENTITY_CONFIG=shared-devices, and
`cdp config identity` to list, print and locate them (the wheel's copy:
tests/integration/test_wheel.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.identity.config import ConfigError, load, read
from pipeline.resources import (
    DEFAULT_IDENTITY_CONFIG,
    PACKAGED_CONFIGS,
    SHARED_DEVICES_CONFIG,
    schema_path,
    schema_text,
)
from pipeline.settings import VARIABLES

MINE = '[namespaces.member_no]\nkind = "person"\npriority = 1\nunique = true\n'


def cdp(*args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def test_a_name_selects_the_packaged_file() -> None:
    assert read("shared-devices") == (
        schema_path(SHARED_DEVICES_CONFIG),
        schema_text(SHARED_DEVICES_CONFIG),
    )
    assert load("shared-devices") == load(schema_path(SHARED_DEVICES_CONFIG))
    assert load("default") == load() == load("")
    assert read(None)[1] == schema_text(DEFAULT_IDENTITY_CONFIG)


def test_a_file_of_that_name_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path that worked before names the same file, whatever the packaged names."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shared-devices").write_text(MINE)
    assert set(load("shared-devices").namespaces) == {"member_no"}
    assert set(load(str(tmp_path / "shared-devices")).namespaces) == {"member_no"}


def test_neither_a_file_nor_a_name_says_which_names_there_are() -> None:
    with pytest.raises(ConfigError) as error:
        load("shared_devices")
    message = str(error.value)
    assert message.startswith("cannot read identity configuration shared_devices")
    assert "default, shared-devices" in message and "cdp config identity --list" in message


def test_cdp_config_identity_lists_prints_and_locates() -> None:
    code, listed = cdp("config", "identity", "--list")
    assert code == 0
    rows = [line.split("\t") for line in listed.splitlines()]
    assert [(r[0], r[2]) for r in rows] == [(c.name, schema_path(c.file)) for c in PACKAGED_CONFIGS]
    assert cdp("config", "identity", "shared-devices") == (0, schema_text(SHARED_DEVICES_CONFIG))
    path = schema_path(SHARED_DEVICES_CONFIG)
    assert cdp("config", "identity", "shared-devices", "--path") == (0, path + "\n")
    # Without a name: the one CDP_IDENTITY_CONFIG selects, the default without it.
    assert cdp("config", "identity", CDP_IDENTITY_CONFIG="shared-devices")[1] == (
        schema_text(SHARED_DEVICES_CONFIG)
    )
    assert cdp("config", "identity", CDP_IDENTITY_CONFIG="")[1] == (
        schema_text(DEFAULT_IDENTITY_CONFIG)
    )


def test_cdp_config_identity_checks_what_it_prints(tmp_path: Path) -> None:
    bad = tmp_path / "identity.toml"
    bad.write_text(MINE.replace("priority = 1", 'priority = "high"'))
    code, output = cdp("config", "identity", str(bad))
    assert code == 1
    assert f"{bad}, line 3: namespace 'member_no': priority" in output
    code, output = cdp("config", "identity", "nothing-of-that-name")
    assert code == 1 and "cannot read identity configuration" in output


def test_cdp_config_alone_still_prints_the_settings_table() -> None:
    code, output = cdp("config")
    assert code == 0
    assert output.splitlines()[2:] == [
        f"| `{v.name}` | `{v.default}` | {v.doc} |" for v in VARIABLES
    ]


def test_bench_quality_takes_names_and_refuses_what_is_neither() -> None:
    """`--identity-config` takes what CDP_IDENTITY_CONFIG takes; a value that is neither
    stops before anything is wiped or started."""
    status, output = cdp("bench", "quality", "--yes", "--identity-config", "nope")
    assert status == 2 and "default, shared-devices" in output


@pytest.mark.parametrize("extra", [["shared-devices"], ["--path"]])
def test_list_with_a_name_or_path_is_a_usage_error(extra: list[str]) -> None:
    """`--list` lists every packaged configuration: a NAME or --path beside it would be
    ignored, so it is refused rather than answered with the whole list."""
    status, output = cdp("config", "identity", "--list", *extra)
    assert status == 2 and "--list takes no NAME and no --path" in output
