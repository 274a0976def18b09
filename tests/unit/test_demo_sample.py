"""The demo's sample (cdp_tools/sample.py) under the reference model: its shared family
tablet and junk email mean the same under the default identity configuration (CONTRACT
4.1's connected set) and the opt-in shared-device file, so `make demo` prints the same."""

from __future__ import annotations

import json

from cdp_tools.sample import FAMILY_TABLET, JUNK_EMAIL, SampleGenerator
from pipeline.identity.config import IdentityConfig, load
from pipeline.model import Rejected
from pipeline.resources import SHARED_DEVICES_CONFIG, schema_path
from tests.model.records import stitch_event
from tests.model.reference import Model

START = 1_790_000_000_000


def _stitched(config: IdentityConfig) -> Model:
    model = Model(config)
    sample = SampleGenerator(40, seed=7, start_ms=START)
    for offset, (channel, envelope) in enumerate(sample.events()):
        raw = json.dumps(envelope).encode()
        try:
            event = stitch_event(raw, channel, offset, now_ms=START + 86_400_000, config=config)
        except Rejected:
            continue
        model.stitch([event])
    return model


def _graphs(model: Model) -> list[list[str]]:
    return sorted(sorted(g.members) for g in model.graphs.values())


def test_the_family_tablet_follows_the_last_login_under_either_configuration() -> None:
    """The parent and the child log in with CRM ids: rule 4.2's unique-namespace rebuild
    moves the tablet to the child, shared-device rule or not; the junk email links none."""
    default = _stitched(load())
    shared = _stitched(load(schema_path(SHARED_DEVICES_CONFIG)))
    assert _graphs(default) == _graphs(shared)
    tablet = default.graphs[default.index[f"device_id:{FAMILY_TABLET}"]].members
    assert "crm_id:CRM100001" in tablet and "crm_id:CRM100000" not in tablet
    assert f"email:{JUNK_EMAIL}" not in default.index
