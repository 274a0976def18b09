"""Profile-update notes end to end (issue 12): a worker writes a batch's notes one record
per partition of the internal updates topic, and publishes the one-note records that a
worker of the previous version left there."""

from __future__ import annotations

import msgpack
import pytest

from pipeline.notes import GROUPED, read_notes
from pipeline.partition import cached_partitioner
from tests.conftest import PipelineEnv
from tests.integration.support import T0, envelope, ident, records, send, send_raw, settle

pytestmark = pytest.mark.integration


def test_notes_go_a_record_per_partition_and_old_records_are_still_published(
    pipeline_env: PipelineEnv, start_worker
) -> None:
    start_worker()
    settings, topics = pipeline_env.settings, pipeline_env.topics
    send(settings, [("web", envelope(ident("crm_id", f"U-{i}"), at=i)) for i in range(40)])
    settle(settings)
    partitions = list(range(settings.topic_partitions))
    noted = []
    for r in records(settings, topics.profile_updates, decoded=False):
        assert r.raw is not None and msgpack.unpackb(r.raw)[0] == GROUPED
        for profile_id, _ in read_notes(None, r.raw):
            assert cached_partitioner(profile_id.encode(), partitions, partitions) == r.partition
            noted.append(profile_id)
    published = records(settings, topics.profiles)
    assert sorted(noted) == sorted(r.key for r in published) and len(noted) == 40

    # What a worker before issue 12 wrote: one note, keyed by its profile id (the producer's
    # default partitioner sends it to that id's partition); and a record no version wrote.
    profile_id = noted[0]
    send_raw(
        settings, topics.profile_updates, [msgpack.packb([T0, T0]), b"\xc1"], profile_id.encode()
    )
    settle(settings)
    again = [r for r in records(settings, topics.profiles) if r.key == profile_id]
    assert len(again) == 2 and again[0].value == again[1].value
