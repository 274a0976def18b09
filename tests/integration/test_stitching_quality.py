"""Issue 14: stitching quality against ground truth through a real worker: with the
opt-in shared-device rule (schemas/identity.shared-devices.toml), shared tablets,
kiosks, placeholder emails and recycled numbers join no two people.

The issue's targets were met with that rule, which the default no longer has: under
CONTRACT 4.1's connected set a tablet shared by a parent known by a CRM id and one
known by an email joins them, so the default's precision is lower by design (README,
Identity rules, has both configurations' figures)."""

from __future__ import annotations

import random
import time

import pytest

from cdp_tools.quality.generator import generate
from cdp_tools.quality.run import run_through_pipeline
from pipeline.resources import SHARED_DEVICES_CONFIG, schema_path
from tests.conftest import PipelineEnv

pytestmark = pytest.mark.integration

PEOPLE = 500
# The targets are precision >= 0.995 and recall >= 0.98, measured by `cdp bench
# quality` on 1,500 people (README). A random 500-person sample's recall moves by about
# +-0.01 between seeds (the 2% with an unconnected second credential, households, ...),
# so the recall bound here leaves that room; precision, the failure users fear, has none.
PRECISION, RECALL = 0.995, 0.97


def test_precision_and_recall_against_ground_truth(pipeline_env: PipelineEnv) -> None:
    seed = random.randrange(1 << 30)
    data = generate(PEOPLE, seed, int(time.time() * 1000) - 40 * 86_400_000)
    outcome = run_through_pipeline(
        pipeline_env.settings,
        data,
        seed=seed,
        log_dir=pipeline_env.logs,
        identity_config=schema_path(SHARED_DEVICES_CONFIG),
    )
    s = outcome.score
    print(f"\n[quality] seed={seed} {s.precision=:.4f} {s.recall=:.4f} {s.largest_graph=}")
    assert s.precision >= PRECISION, (seed, s.wrong_pairs)
    assert s.recall >= RECALL, seed
    assert s.largest_graph <= 50
    assert outcome.counted + outcome.dead_letters == outcome.events, seed
