"""A stack of its own for a fault module marked ``own_stack("kafka", "redis")`` or
``own_stack("redis")``: those services on their own ports and state dir. So an outage a
test causes hits nobody else, the workload of a test that floods Redis does not slow
every other test's, and the fault tests run alongside the rest of the suite (`make
test`) rather than after it."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cdp_tools.stack import control
from cdp_tools.stack.proc import port_free
from pipeline.settings import Settings
from tests.conftest import PipelineEnv, new_pipeline_env


def _quiet(_: str) -> None:
    pass


def _three_free_ports() -> int:
    """The first of three free consecutive ports, in a band of 400 of this test process's
    own (pytest-xdist's gwN): below the ephemeral range, so that no client takes one
    while a test has the service down, and apart from the other processes' and from the
    temporary clusters' (20000-22700 and +10000), so that none binds one while a Kafka
    takes seconds to start. Tried in random order: another checkout's suite on this
    machine stays off the same ports."""
    band = 23000 + 400 * int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
    starts = random.sample(range(band, band + 398, 3), k=133)
    for base in starts:
        if all(port_free(port) for port in range(base, base + 3)):
            return base
    raise RuntimeError(f"no three free consecutive ports in {band}-{band + 399}")


@pytest.fixture(scope="module")
def own_stack(
    request: pytest.FixtureRequest,
    base_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Settings]:
    """The module's own services (the others are the suite's); the stop and start helpers
    of tests/faults/support.py act on them, through the environment."""
    marker = request.node.get_closest_marker("own_stack")
    services = set(marker.args) if marker else set()
    assert services and services <= {"kafka", "redis"}, f"own_stack of {services}"
    state = tmp_path_factory.mktemp("stack")
    base = _three_free_ports()  # Kafka, its controller, Redis
    settings = replace(base_settings, state_dir=str(state))
    if "kafka" in services:
        # The Kafka jars the suite's stack already resolved: no second download.
        (state / "kafka").mkdir()
        (state / "kafka" / "libs").symlink_to(
            Path(base_settings.state_dir).absolute() / "kafka" / "libs"
        )
        settings = replace(settings, kafka_bootstrap=f"127.0.0.1:{base}")
    if "redis" in services:
        settings = replace(settings, redis_url=f"redis://127.0.0.1:{base + 2}/0")
    only = None if len(services) == 2 else "kafka" if "kafka" in services else "redis"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CDP_STATE_DIR", settings.state_dir)
        env.setenv("CDP_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
        env.setenv("CDP_REDIS_URL", settings.redis_url)
        try:
            control.up(only=only, say=_quiet)
            yield settings
        finally:
            control.down(only=only, wipe=True, say=_quiet)


@pytest.fixture
def pipeline_env(
    request: pytest.FixtureRequest, base_settings: Settings, tmp_path: Path
) -> PipelineEnv:
    """A test's slice, on its module's own stack when the module is marked ``own_stack``."""
    if request.node.get_closest_marker("own_stack"):
        base_settings = request.getfixturevalue("own_stack")
    return new_pipeline_env(base_settings, tmp_path)
