"""CONTRACT 4, clause by clause: each test states what the contract's text expects (not
what the reference model computes), through the Redis scripts; ``Both`` also holds the
model to the same steps."""

from __future__ import annotations

import dataclasses
import json

import pytest
import redis.asyncio

from pipeline.identity.arguments import StitchEvent
from pipeline.identity.config import Namespace, parse
from pipeline.ingest import parse_event
from pipeline.records import Record
from pipeline.stages.stitch import to_stitch_event
from tests.identity.support import DEFAULTS, Both, config, make_event, redis_url

pytestmark = pytest.mark.integration


@pytest.fixture
def target_url() -> str:
    """One Redis is enough here: the cluster runs the same scripts (test_identity_examples)."""
    return redis_url()


async def count_of(both: Both, key: str) -> int:
    profile = await both.store.read_profile_of(key)
    return profile.count if profile else 0


# -- 4.2: which link wins --------------------------------------------------------------


async def test_a_late_event_does_not_lower_a_links_time(client: redis.asyncio.Redis) -> None:
    """A link's time is the latest event time that asserted it: A's link to the email at
    5000, asserted again late with time 1000, still beats B's link at 3000. The event
    that made the link stays the first to arrive."""
    both = Both(client)
    await both.stitch(make_event("e1", 5000, "crm_id:A", "email:x@x.com"))
    await both.stitch(make_event("late", 1000, "crm_id:A", "email:x@x.com"))
    await both.stitch(make_event("e2", 3000, "crm_id:B", "email:x@x.com"))
    assert await both.members("email:x@x.com") == ["crm_id:A", "email:x@x.com"]
    assert await both.members("crm_id:B") == ["crm_id:B"]
    # Its first seen is the earliest event time that asserted it, as a member's is.
    graph = await both.store.graph(await both.pid("crm_id:A") or "")
    assert graph is not None
    assert [(ln.first_seen_ms, ln.last_seen_ms, ln.event_id) for ln in graph.links] == [
        (1000, 5000, "e1")
    ]
    await both.check()


async def test_the_most_recent_link_wins_by_event_time_not_arrival(
    client: redis.asyncio.Redis,
) -> None:
    """A shared device follows the person who logged in last by event time: a login that
    arrives last but happened earlier does not take it."""
    both = Both(client)
    await both.stitch(make_event("ann", 1000, "crm_id:ann", "device_id:tab"))
    await both.stitch(make_event("bob", 3000, "crm_id:bob", "device_id:tab"))
    await both.stitch(make_event("ann-late", 2000, "crm_id:ann", "device_id:tab"))
    assert await both.members("device_id:tab") == ["crm_id:bob", "device_id:tab"]
    assert await both.members("crm_id:ann") == ["crm_id:ann"]
    await both.check()


async def test_equal_link_times_go_to_the_later_arrival(client: redis.asyncio.Redis) -> None:
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "crm_id:A", "email:x@x.com"))
    await both.stitch(make_event("e2", 1000, "crm_id:B", "email:x@x.com"))
    assert await both.members("email:x@x.com") == ["crm_id:B", "email:x@x.com"]
    await both.check()


async def test_person_links_come_before_newer_weaker_links(client: redis.asyncio.Redis) -> None:
    """Strength first, time second: a CRM-to-email link of 1000 beats a phone link of
    9000 that would pull the email (through the phone) to another CRM id."""
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "crm_id:A", "email:a@x.com"))
    await both.stitch(make_event("e2", 9000, "email:a@x.com", "phone:+15550100"))
    await both.stitch(make_event("e3", 9500, "crm_id:B", "phone:+15550100"))
    assert await both.members("crm_id:A") == ["crm_id:A", "email:a@x.com"]
    assert await both.members("crm_id:B") == ["crm_id:B", "phone:+15550100"]
    await both.check()


async def test_a_chain_keeps_its_strong_ends_and_drops_the_weak_middle(
    client: redis.asyncio.Redis,
) -> None:
    """A-B and C-D strong, joined through a phone by two weaker links, D a second value of
    A's unique namespace: the rebuild keeps both strong ends and the newer weak link, and
    leaves out the older one, which would join them."""
    ns = dict(DEFAULTS.namespaces)
    ns["member_no"] = Namespace("member_no", "person", 2, False)
    both = Both(client, config(namespaces=ns))
    await both.stitch(make_event("ab", 1000, "crm_id:A", "loyalty_id:B"))  # strength 2
    await both.stitch(make_event("bc", 1500, "loyalty_id:B", "phone:+15550100"))  # 4, older
    await both.stitch(make_event("cd", 2000, "phone:+15550100", "member_no:C"))  # 4
    result = await both.stitch(make_event("d", 4000, "member_no:C", "crm_id:D"))  # 2
    removed = [(c["a"], c["b"], c["rule"]) for c in result.changes if c["type"] == "link_removed"]
    assert removed == [("loyalty_id:B", "phone:+15550100", "4.2 unique-namespace rebuild")]
    assert await both.members("crm_id:A") == ["crm_id:A", "loyalty_id:B"]
    assert await both.members("crm_id:D") == ["crm_id:D", "member_no:C", "phone:+15550100"]
    await both.check()


async def test_a_unique_device_namespace(client: redis.asyncio.Redis) -> None:
    """A unique namespace of kind device: a graph holds one value of it, the newest link
    winning; as a follower it also never joins two persons."""
    ns = dict(DEFAULTS.namespaces)
    ns["car_vin"] = Namespace("car_vin", "device", 5, True, follower=True)
    both = Both(client, config(namespaces=ns))
    await both.stitch(make_event("e1", 1000, "crm_id:A", "car_vin:V1"))
    result = await both.stitch(make_event("e2", 2000, "crm_id:A", "car_vin:V2"))
    assert "link_removed" in [c["type"] for c in result.changes]
    assert await both.members("crm_id:A") == ["car_vin:V2", "crm_id:A"]
    assert await both.members("car_vin:V1") == ["car_vin:V1"]
    await both.stitch(make_event("e3", 3000, "email:b@x.com", "car_vin:V2"))
    assert await both.members("car_vin:V2") == ["car_vin:V2", "email:b@x.com"]
    assert await both.members("crm_id:A") == ["crm_id:A"]
    await both.check()


# -- 4.3: the size limit ----------------------------------------------------------------


SMALL = """
max_graph_size = 3
[namespaces.crm_id]
kind = "person"
priority = 1
unique = true
[namespaces.phone]
kind = "person"
priority = 4
unique = false
[namespaces.device_id]
kind = "device"
priority = 5
unique = false
[namespaces.ecid]
kind = "cookie"
priority = 6
unique = false
"""


async def test_a_custom_size_limit_detaches_the_least_recently_seen_and_keeps_its_data(
    client: redis.asyncio.Redis,
) -> None:
    both = Both(client, parse(SMALL))
    await both.stitch(make_event("c1", 1000, "crm_id:A", "ecid:c1", primary="ecid:c1"))
    await both.stitch(make_event("c2", 2000, "crm_id:A", "ecid:c2"))
    result = await both.stitch(make_event("p1", 3000, "crm_id:A", "phone:+15550100"))
    evicted = [c for c in result.changes if c["type"] == "identity_evicted"]
    assert [(c["identity"], c["rule"]) for c in evicted] == [("ecid:c1", "4.3 graph size limit")]
    assert await both.members("crm_id:A") == ["crm_id:A", "ecid:c2", "phone:+15550100"]
    # The record names the profile the identity was detached from (its key is its own).
    assert evicted[0]["from"] == await both.pid("crm_id:A")
    assert evicted[0]["profile_id"] == await both.pid("ecid:c1")
    # Detached, the cookie is a profile of its own with its data: not silently excluded.
    assert await both.members("ecid:c1") == ["ecid:c1"]
    assert await count_of(both, "ecid:c1") == 1 and await count_of(both, "crm_id:A") == 2
    # Persons go only once no cookie or device is left, the least recently seen first.
    await both.stitch(make_event("p2", 4000, "crm_id:A", "phone:+15550101"))
    await both.stitch(make_event("p3", 5000, "crm_id:A", "phone:+15550100"))
    result = await both.stitch(make_event("p4", 6000, "crm_id:A", "phone:+15550102"))
    evicted = [c for c in result.changes if c["type"] == "identity_evicted"]
    assert [c["identity"] for c in evicted] == ["phone:+15550101"]
    assert await both.members("crm_id:A") == ["crm_id:A", "phone:+15550100", "phone:+15550102"]
    await both.check()


async def test_an_identity_detached_as_it_arrives_names_the_graph_it_was_kept_from(
    client: redis.asyncio.Redis,
) -> None:
    """A cookie new to a full graph is detached by the event that brings it: no split
    says where from, so its identity_evicted record does."""
    both = Both(client, parse(SMALL))
    await both.stitch(make_event("f1", 5000, "crm_id:A", "phone:+15550100", "phone:+15550101"))
    pid = await both.pid("crm_id:A")
    result = await both.stitch(make_event("f2", 6000, "crm_id:A", "ecid:late"))
    (evicted,) = [c for c in result.changes if c["type"] == "identity_evicted"]
    assert evicted["identity"] == "ecid:late" and evicted["from"] == pid
    assert evicted["profile_id"] == await both.pid("ecid:late") != pid
    await both.check()


async def test_what_hangs_on_a_detached_identity_is_left_on_its_own(
    client: redis.asyncio.Redis,
) -> None:
    """Detaching removes the identity's links: a cookie linked to the graph only through
    the detached device leaves it too, reported as a split, each with its own profile."""
    both = Both(client, parse(SMALL))
    await both.stitch(make_event("e1", 1000, "crm_id:A", "device_id:d"))
    await both.stitch(make_event("e2", 2000, "ecid:x", "device_id:d", primary="ecid:x"))
    pid = await both.pid("crm_id:A")
    result = await both.stitch(make_event("e3", 3000, "crm_id:A", "ecid:y"))
    assert [c["identity"] for c in result.changes if c["type"] == "identity_evicted"] == [
        "device_id:d"
    ]
    split = [c for c in result.changes if c["type"] == "graph_split"]
    assert [c["profile_id"] for c in split] == [pid] and len(split[0]["into"]) == 3
    assert {c["rule"] for c in result.changes if c["type"] != "link_added"} == {
        "4.3 graph size limit"
    }
    assert await both.members("crm_id:A") == ["crm_id:A", "ecid:y"]
    assert await both.members("ecid:x") == ["ecid:x"]
    assert await count_of(both, "ecid:x") == 1
    await both.check()


# -- 4.4: fragments ----------------------------------------------------------------------


async def test_data_is_stored_on_the_primary_and_moves_with_it(
    client: redis.asyncio.Redis,
) -> None:
    """Explicit primary, else the highest priority; on a split each identity's data goes
    with it."""
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "ecid:c1", "email:a@x.com", primary="ecid:c1"))
    await both.stitch(make_event("e2", 2000, "crm_id:A", "email:a@x.com", primary="crm_id:A"))
    profile = await both.store.read_profile_of("crm_id:A")
    assert profile is not None
    assert {k: f.count for k, f in profile.fragments.items() if f.count} == {
        "ecid:c1": 1,
        "crm_id:A": 1,
    }
    await both.stitch(make_event("e3", 3000, "crm_id:B", "email:a@x.com"))  # email moves
    assert await both.members("crm_id:B") == ["crm_id:B", "ecid:c1", "email:a@x.com"]
    assert await count_of(both, "crm_id:A") == 1  # e2
    assert await count_of(both, "crm_id:B") == 2  # e1 (on the cookie) and e3
    await both.check()


# -- 4.5: profile ids --------------------------------------------------------------------


async def test_the_older_id_survives_a_merge_into_a_larger_newer_graph(
    client: redis.asyncio.Redis,
) -> None:
    both = Both(client)
    await both.stitch(make_event("old", 5000, "ecid:lonely"))
    older = await both.pid("ecid:lonely")
    await both.stitch(make_event("big", 1000, "crm_id:A", "email:a@x.com", "phone:+15550100"))
    third = make_event("third", 1500, "loyalty_id:L1", "device_id:d1")
    await both.stitch(third)
    newer, newest = await both.pid("crm_id:A"), await both.pid("loyalty_id:L1")
    result = await both.stitch(
        make_event("join", 6000, "email:a@x.com", "ecid:lonely", "loyalty_id:L1")
    )
    assert {await both.pid(k) for k in ("crm_id:A", "ecid:lonely", "device_id:d1")} == {older}
    assert result.ceased == {newer, newest} and result.dirty == {older}
    # Ceased ids are never reused: a new graph gets a fresh one.
    await both.stitch(make_event("fresh", 7000, "crm_id:Z"))
    assert await both.pid("crm_id:Z") not in {older, newer, newest}
    await both.check()


async def test_a_split_keeps_the_id_with_the_highest_priority_identity(
    client: redis.asyncio.Redis,
) -> None:
    """The part holding the old graph's best identity keeps the id, whichever part is
    larger; between two of one priority the smaller value (README)."""
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "phone:+15550100", "ecid:c1", "ecid:c2"))
    await both.stitch(make_event("e2", 2000, "phone:+15550100", "email:b@x.com"))
    pid = await both.pid("email:b@x.com")
    await both.delete_identities(["phone:+15550100"], "req")
    assert await both.pid("email:b@x.com") == pid
    assert await both.pid("ecid:c1") not in {pid, None}
    # Two phones of one graph: deleting their link's holder leaves the id with the smaller.
    await both.stitch(make_event("e3", 3000, "phone:+15550102", "ecid:c9"))
    await both.stitch(make_event("e4", 4000, "phone:+15550101", "ecid:c9"))
    pid = await both.pid("ecid:c9")
    await both.delete_identities(["ecid:c9"], "req-2")
    assert await both.pid("phone:+15550101") == pid != await both.pid("phone:+15550102")
    await both.check()


# -- 4.6: privacy ------------------------------------------------------------------------


async def test_deleting_a_profile_then_replays_and_fresh_events(
    client: redis.asyncio.Redis,
) -> None:
    """Every identity of the graph goes; replays bring none back; a fresh event naming a
    deleted identity does not either (the suppression list has no end: README)."""
    both = Both(client)
    events = [
        make_event("e1", 1000, "crm_id:A", "email:a@x.com"),
        make_event("e2", 2000, "email:a@x.com", "ecid:c1", primary="ecid:c1"),
    ]
    await both.stitch(*events)
    pid = await both.pid("crm_id:A")
    gone = await both.delete_profile_of("ecid:c1", "req")
    assert sorted(gone.deleted) == ["crm_id:A", "ecid:c1", "email:a@x.com"]
    assert gone.ceased == {pid}
    replayed = await both.stitch(*events)
    assert replayed.outcomes == ["duplicate", "duplicate"] and replayed.dirty == set()
    renamed = [dataclasses.replace(e, event_id=f"{e.event_id}-again") for e in events]
    assert (await both.stitch(*renamed)).outcomes == ["rejected:all_identities_deleted"] * 2
    fresh = await both.stitch(make_event("new", 10**13, "email:a@x.com", "ecid:c2"))
    assert fresh.outcomes == ["ok"] and await both.pid("email:a@x.com") is None
    assert await both.members("ecid:c2") == ["ecid:c2"]
    await both.check()


# -- a custom CDP_IDENTITY_CONFIG, through ingest -----------------------------------------

CUSTOM = """
[namespaces.member]
kind = "person"
priority = 1
unique = true
format = 'M[0-9]{4}'
blocked = ["M0000"]
[namespaces.email]
kind = "person"
priority = 1
unique = true
normalize = ["trim", "lowercase"]
[namespaces.ecid]
kind = "cookie"
priority = 6
unique = false
"""


def envelope(event_id: str, ts: int, *identities: tuple[str, str]) -> StitchEvent:
    value = json.dumps(
        {
            "event_id": event_id,
            "timestamp": 1_700_000_000_000 + ts,  # ingest takes times from 2000 to tomorrow
            "kind": "experience",
            "identities": [{"namespace": n, "id": v} for n, v in identities],
            "attributes": {"seen": event_id},
        }
    ).encode()
    record = Record("cdp.events.web", 0, ts, None, value)
    event = parse_event(
        value,
        topic=record.topic,
        partition=0,
        offset=ts,
        config=parse(CUSTOM),
        channel_default="web",
        max_bytes=10_000,
    )
    return to_stitch_event(event, record)


async def test_a_custom_configuration_checks_blocks_and_ranks(
    client: redis.asyncio.Redis,
) -> None:
    """A value failing its namespace's format, or blocked, is left out and the event goes
    on; two namespaces of one priority are both unique and both strongest."""
    both = Both(client, parse(CUSTOM))
    bad = envelope("e1", 1000, ("member", "X1"), ("member", "M0000"), ("ecid", "c1"))
    assert bad.identities == ["ecid:c1"]
    await both.stitch(bad)
    await both.stitch(
        envelope("e2", 2000, ("member", "M0001"), ("email", " A@X.com"), ("ecid", "c1"))
    )
    assert await both.members("ecid:c1") == ["ecid:c1", "email:a@x.com", "member:M0001"]
    # A second member id for the email: the newer link of one strength wins it.
    await both.stitch(envelope("e3", 3000, ("member", "M0002"), ("email", "a@x.com")))
    # The cookie's two links (one event made both) tie on strength, time and arrival: the
    # first in key order keeps it.
    assert await both.members("email:a@x.com") == ["ecid:c1", "email:a@x.com", "member:M0002"]
    assert await both.members("member:M0001") == ["member:M0001"]
    await both.check()
