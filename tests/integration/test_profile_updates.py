"""Direct publishing end to end: a worker publishes the profiles a batch changed itself
and writes nothing to the internal updates topic, and still publishes the update notes
that workers before it left there (both of their formats)."""

from __future__ import annotations

import msgpack
import pytest

from pipeline.notes import UpdateNote
from tests.conftest import PipelineEnv
from tests.integration.support import T0, envelope, ident, records, send, send_raw, settle
from tests.model.notes import note_records

pytestmark = pytest.mark.integration


def test_profiles_are_published_without_notes_and_older_workers_notes_still_are(
    pipeline_env: PipelineEnv, start_worker
) -> None:
    start_worker()
    settings, topics = pipeline_env.settings, pipeline_env.topics
    send(settings, [("web", envelope(ident("crm_id", f"U-{i}"), at=i)) for i in range(40)])
    settle(settings)
    assert records(settings, topics.profile_updates, decoded=False) == []
    published = records(settings, topics.profiles)
    assert len({r.key for r in published}) == 40

    # What workers before this one wrote: a record of grouped notes (issue 12 on), one
    # note keyed by its profile id (before it), and a record no version wrote.
    profile_id = str(published[0].key)
    ((_, grouped),) = note_records({profile_id: UpdateNote(T0, T0)}, lambda key: 0)
    send_raw(
        settings,
        topics.profile_updates,
        [grouped, msgpack.packb([T0, T0]), b"\xc1"],
        profile_id.encode(),
    )
    settle(settings)
    again = [r for r in records(settings, topics.profiles) if r.key == profile_id]
    assert len(again) == 3 and again[0].value == again[1].value == again[2].value
