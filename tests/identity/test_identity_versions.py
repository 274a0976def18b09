"""The publisher's check (pipeline/publish/verified.py) compares graph versions: every
script that changes what a profile document shows must change its version, and
versions.lua must answer the version read.lua reads."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
import redis.asyncio

from pipeline.identity.commands import KEYSPACE
from pipeline.profile.assemble import assemble
from tests.identity.support import DEFAULTS, Both, config, make_event

pytestmark = pytest.mark.integration


async def documents(both: Both, pids: set[str]) -> dict[str, dict[str, Any] | None]:
    raws = await both.store.read_profiles(sorted(pids))
    return {pid: raw and assemble(raw, DEFAULTS, recent_limit=3) for pid, raw in raws.items()}


def shown(document: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a document shows, less what the version check itself compares."""
    return document and {k: v for k, v in document.items() if k not in ("version", "updated_at")}


async def test_every_change_a_document_shows_changes_its_version(
    client: redis.asyncio.Redis,
) -> None:
    both = Both(client, config(quarantine_max_reassignments=2, max_graph_size=4))
    junk = "phone:+15550100"
    steps: list[Any] = [
        make_event("new", 1000, "crm_id:A", "ecid:a1"),  # a new graph
        make_event("new", 1000, "crm_id:A", "ecid:a1"),  # a redelivery: nothing changes
        make_event("common", 1100, "crm_id:A", "ecid:a1", attributes={"tier": "gold"}),
        make_event("common2", 1200, "ecid:a1", primary="ecid:a1", type_="buy"),
        make_event("late", 900, "crm_id:A", attributes={"tier": "silver"}),  # older: kept
        make_event("link", 1300, "crm_id:A", "ecid:a2"),  # fast link
        make_event("other", 1400, "crm_id:B", "ecid:b1"),
        make_event("merge", 1500, "ecid:a2", "ecid:b1", "email:x@example.com"),
        make_event("rebuild", 1600, "crm_id:B", "ecid:b1"),  # two CRM ids: rule 4.2
        make_event("big", 1700, "crm_id:A", "ecid:a3", "ecid:a4", "device_id:d1"),  # size
    ] + [make_event(f"junk{n}", 2000 + n, f"crm_id:J{n}", junk) for n in range(4)]
    pids: set[str] = set()
    before: dict[str, dict[str, Any] | None] = {}
    for step in [*steps, "release", "delete", "delete_profile"]:
        if step == "release":
            await both.store.release(junk, "req")
            both.model.release(junk, "req")
        elif step == "delete":
            result = await both.delete_identities(["ecid:a1"], "del")
            pids |= result.dirty | result.ceased
        elif step == "delete_profile":
            result = await both.delete_profile_of("crm_id:J3", "del-all")
            pids |= result.dirty | result.ceased
        else:
            result = await both.stitch(step)
            pids |= result.dirty | result.ceased
        after = await documents(both, pids)
        versions = await both.store.versions(sorted(pids))
        assert versions == [d and d["version"] for _, d in sorted(after.items())]
        for pid, document in after.items():
            if shown(document) != shown(before.get(pid)):
                assert (document and document["version"]) != (
                    before.get(pid) and before[pid]["version"]  # type: ignore[index]
                ), (step, pid)
        before = after
    assert await both.store.quarantined() == []
    await both.check()


@pytest.mark.parametrize("version", [0, 127, 128, 255, 256, 70_000, 2**32 + 5])
async def test_the_version_is_read_from_the_first_bytes_of_any_blob(
    client: redis.asyncio.Redis, version: int
) -> None:
    both = Both(client)
    evidence = [f"event-{i}" for i in range(20)]  # more than 15 items: a 16-bit array header
    for pid, blob in {
        "p_small": [version, 1, [], []],
        "p_large": [version, 1, [], [], *evidence],
    }.items():
        await client.set(f"{KEYSPACE}:g:{pid}", msgpack.packb(blob))
    assert await both.store.versions(["p_small", "p_large", "p_none"]) == [version, version, None]
