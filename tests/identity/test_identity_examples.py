"""Named scenarios of CONTRACT 4, each checked in Redis and against the reference model."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest
import redis.asyncio

from pipeline.identity.commands import GraphStore
from pipeline.identity.config import IdentityConfig
from pipeline.identity.replies import ChangeResult, StitchResult
from tests.identity.support import (
    DEFAULTS,
    SHARED_DEVICES,
    Both,
    config,
    make_event,
    without_time,
)

# A real Redis at CDP_REDIS_URL (`make test` starts it).
pytestmark = pytest.mark.integration


def types(result: StitchResult | Sequence[dict[str, object]]) -> list[object]:
    changes = result.changes if isinstance(result, StitchResult) else result
    return [c["type"] for c in changes]


async def test_shared_device_follows_last_login(client: redis.asyncio.Redis) -> None:
    """Adobe's example: two people on one tablet; the last login keeps the device and the
    device's anonymous cookie events move with it."""
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "crm_id:ann", "device_id:tablet"))
    await both.stitch(
        make_event("e2", 2000, "ecid:cookie", "device_id:tablet", primary="ecid:cookie")
    )
    ann = await both.pid("crm_id:ann")
    result = await both.stitch(make_event("e3", 3000, "crm_id:bob", "device_id:tablet"))
    assert await both.members("crm_id:ann") == ["crm_id:ann"]
    assert await both.members("crm_id:bob") == ["crm_id:bob", "device_id:tablet", "ecid:cookie"]
    assert await both.pid("crm_id:ann") == ann
    bob = await both.pid("crm_id:bob")
    assert "graph_split" in types(result) and {ann, bob} <= result.dirty
    profile = (await both.store.read_profiles([bob]))[bob]
    assert profile is not None and profile.count == 2  # bob's event and the cookie's
    await both.stitch(make_event("e4", 4000, "crm_id:ann", "device_id:tablet"))
    assert await both.members("crm_id:ann") == ["crm_id:ann", "device_id:tablet", "ecid:cookie"]
    await both.check()


async def test_anonymous_events_then_login(client: redis.asyncio.Redis) -> None:
    both = Both(client)
    for n in range(3):
        await both.stitch(make_event(f"a{n}", 1000 + n, "ecid:anon", attributes={"cart": n}))
    anon = await both.pid("ecid:anon")
    result = await both.stitch(make_event("login", 2000, "email:eve@x.com", "ecid:anon"))
    assert await both.pid("email:eve@x.com") == anon and result.dirty == {anon}
    profile = (await both.store.read_profiles([anon]))[anon]
    assert profile is not None and profile.count == 4 and len(profile.recent) == 4
    await both.check()


async def test_junk_email_cannot_join_two_crm_ids(client: redis.asyncio.Redis) -> None:
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "crm_id:A", "email:test@shop.com"))
    result = await both.stitch(make_event("e2", 2000, "crm_id:B", "email:test@shop.com"))
    assert "link_removed" in types(result)
    assert await both.members("crm_id:A") == ["crm_id:A"]
    assert await both.members("crm_id:B") == ["crm_id:B", "email:test@shop.com"]
    await both.check()


async def test_recycled_phone_does_not_pull_email_from_crm(client: redis.asyncio.Redis) -> None:
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "crm_id:old", "email:old@x.com", "phone:+15550100"))
    await both.stitch(make_event("e2", 9000, "crm_id:new", "phone:+15550100"))
    assert await both.members("crm_id:old") == ["crm_id:old", "email:old@x.com"]
    assert await both.members("crm_id:new") == ["crm_id:new", "phone:+15550100"]
    await both.check()


async def test_older_id_survives_merge(client: redis.asyncio.Redis) -> None:
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "ecid:c1"))
    older = await both.pid("ecid:c1")
    await both.stitch(make_event("e2", 500, "email:z@x.com"))
    newer = await both.pid("email:z@x.com")
    result = await both.stitch(make_event("e3", 2000, "email:z@x.com", "ecid:c1"))
    assert await both.pid("email:z@x.com") == older
    assert result.ceased == {newer} and result.dirty == {older}
    merged = [c for c in result.changes if c["type"] == "graphs_merged"]
    assert merged and merged[0]["profile_id"] == older and merged[0]["from"] == [newer]
    await both.check()


async def test_split_keeps_id_with_highest_priority_and_ceases_ids(
    client: redis.asyncio.Redis,
) -> None:
    # A cookie-to-device link joins two people (CONTRACT 4.1; not with the opt-in
    # shared-device rule).
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "email:a@x.com", "ecid:c1"))
    await both.stitch(make_event("e2", 1100, "crm_id:A", "device_id:d1"))
    await both.stitch(make_event("e3", 1200, "ecid:c1", "device_id:d1"))
    first = await both.pid("email:a@x.com")
    # Deleting the link-holder splits the graph: crm_id:A's part keeps the id.
    deleted = await both.store.delete_identities(["device_id:d1"], "req-1")
    both.model.delete_identities(["device_id:d1"], "req-1")
    assert await both.pid("crm_id:A") == first
    other = await both.pid("email:a@x.com")
    assert other != first and deleted.dirty == {first, other}
    gone = await both.store.delete_profile_of("email:a@x.com", "req-2")
    both.model.delete_profile_of("email:a@x.com", "req-2")
    assert gone.ceased == {other} and sorted(gone.deleted) == ["ecid:c1", "email:a@x.com"]
    assert (await both.store.read_profiles([other or ""])) == {other: None}
    await both.check()


async def test_delete_profile_of_an_identity_takes_the_graph_it_is_in_at_that_moment(
    client: redis.asyncio.Redis,
) -> None:
    """The graph is found inside the delete itself: an identity merged into another
    profile takes that whole profile with it, and one in no graph is still suppressed."""
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "crm_id:A", "email:a@x.com"))
    await both.stitch(make_event("e2", 1100, "ecid:c9", "device_id:d9"))
    await both.stitch(make_event("e3", 1200, "email:a@x.com", "ecid:c9"))
    gone = await both.store.delete_profile_of("device_id:d9", "req-1")
    both.model.delete_profile_of("device_id:d9", "req-1")
    assert sorted(gone.deleted) == ["crm_id:A", "device_id:d9", "ecid:c9", "email:a@x.com"]
    nobody = await both.store.delete_profile_of("phone:+15550100", "req-2")
    both.model.delete_profile_of("phone:+15550100", "req-2")
    assert nobody.deleted == [] and nobody.ceased == set()
    await both.stitch(make_event("e4", 1300, "phone:+15550100", "ecid:c1"))
    assert await both.pid("phone:+15550100") is None  # suppressed by the request
    await both.check()


async def test_a_request_id_reused_for_another_identity_is_a_new_request(
    client: redis.asyncio.Redis,
) -> None:
    """Found from outside: a client that reuses a request id (counting from 1 again, a
    fixed ?request_id=) got the first request's answer back, "deleted", and the second
    identity stayed. Only the same request (id, action and identity) is a redelivery."""
    both = Both(client)
    await both.stitch(
        make_event("e1", 1000, "email:a@x.com"), make_event("e2", 1000, "email:b@x.com")
    )
    await both.store.delete_identities(["email:a@x.com"], "req-1")
    both.model.delete_identities(["email:a@x.com"], "req-1")
    other = await both.store.delete_identities(["email:b@x.com"], "req-1")
    assert other.deleted == both.model.delete_identities(["email:b@x.com"], "req-1").outcomes
    assert other.deleted == ["email:b@x.com"] and await both.pid("email:b@x.com") is None
    again = await both.store.delete_identities(["email:b@x.com"], "req-1")
    assert again.deleted == ["email:b@x.com"] and again.ceased == other.ceased  # redelivery
    profile = await both.store.delete_profile_of("email:b@x.com", "req-1")
    assert profile.deleted == both.model.delete_profile_of("email:b@x.com", "req-1").outcomes == []
    await both.check()


async def test_redelivery_after_a_delete_does_not_name_the_deleted_identity(
    client: redis.asyncio.Redis,
) -> None:
    """Rule 4.6: a redelivered event replays its graph changes, but not those naming an
    identity deleted since: the deleted value never reappears on cdp.graph-changes."""
    both = Both(client)
    event = make_event("e1", 1000, "crm_id:A", "email:a@x.com", "ecid:c1")
    first = await both.stitch(event)
    assert any("email:a@x.com" in (c.get("a"), c.get("b")) for c in first.changes)
    await both.store.delete_identities(["email:a@x.com"], "req-1")
    both.model.delete_identities(["email:a@x.com"], "req-1")
    again = await both.stitch(event)
    assert again.outcomes == ["duplicate"]
    assert [(c["a"], c["b"]) for c in again.changes] == [("crm_id:A", "ecid:c1")]
    await both.check()


async def test_redelivery_is_idempotent(client: redis.asyncio.Redis) -> None:
    both = Both(client)
    batch = [make_event("e1", 1000, "crm_id:A", "ecid:c1"), make_event("e2", 2000, "ecid:c1")]
    first = await both.stitch(*batch)
    again = await both.stitch(*batch)
    assert again.outcomes == ["duplicate", "duplicate"]
    assert again.dirty == first.dirty and without_time(again.changes) == without_time(first.changes)
    pid = await both.pid("crm_id:A")
    profile = (await both.store.read_profiles([pid or ""]))[pid or ""]
    assert profile is not None and profile.count == 2
    await both.check()


async def test_deleted_identity_not_revived_by_replay(client: redis.asyncio.Redis) -> None:
    both = Both(client)
    old = make_event("e1", 1000, "email:gone@x.com", "ecid:c1")
    await both.stitch(old)
    await both.store.delete_identities(["email:gone@x.com"], "req")
    both.model.delete_identities(["email:gone@x.com"], "req")
    replay = make_event("e1-replay", 1000, "email:gone@x.com", "ecid:c1")
    assert (await both.stitch(replay)).outcomes == ["ok"]
    assert await both.pid("email:gone@x.com") is None
    only = make_event("e2", 1000, "email:gone@x.com")
    assert (await both.stitch(only)).outcomes == ["rejected:all_identities_deleted"]
    await both.check()


async def test_an_identity_named_twice_in_one_event_counts_once(
    client: redis.asyncio.Redis,
) -> None:
    """The stitch script filters an event's identities in place: a repeat, a deleted one
    and the primary among them still give what the model gives."""
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "email:gone@x.com", "ecid:c1"))
    await both.store.delete_identities(["email:gone@x.com"], "req")
    both.model.delete_identities(["email:gone@x.com"], "req")
    twice = make_event("e2", 2000, "ecid:c1", "email:gone@x.com", "ecid:c1", "crm_id:A", "crm_id:A")
    assert (await both.stitch(twice, dataclasses.replace(twice, event_id="e3"))).outcomes == [
        "ok",
        "ok",
    ]
    assert await both.members("ecid:c1") == ["crm_id:A", "ecid:c1"]
    gone = make_event("e4", 3000, "email:gone@x.com", "email:gone@x.com")
    assert (await both.stitch(gone)).outcomes == ["rejected:all_identities_deleted"]
    await both.check()


async def test_size_limit_detaches_cookies_first(client: redis.asyncio.Redis) -> None:
    both = Both(client, config(max_graph_size=3))
    await both.stitch(make_event("e1", 1000, "crm_id:A", "ecid:old"))
    await both.stitch(make_event("e2", 2000, "crm_id:A", "ecid:new"))
    result = await both.stitch(make_event("e3", 3000, "crm_id:A", "device_id:d1"))
    evicted = [c for c in result.changes if c["type"] == "identity_evicted"]
    assert [c["identity"] for c in evicted] == ["ecid:old"]
    assert await both.members("crm_id:A") == ["crm_id:A", "device_id:d1", "ecid:new"]
    assert await both.members("ecid:old") == ["ecid:old"]
    await both.check()


async def test_size_limit_detaches_the_least_recently_seen_device_or_cookie(
    client: redis.asyncio.Redis,
) -> None:
    """Rule 4.3: cookies and devices go before persons, the least recently seen first,
    whichever of the two it is: a device not seen for long goes before a fresh cookie."""
    both = Both(client, config(max_graph_size=3))
    await both.stitch(make_event("e1", 1000, "crm_id:A", "device_id:old-tablet"))
    await both.stitch(make_event("e2", 2000, "crm_id:A", "ecid:c1"))
    result = await both.stitch(make_event("e3", 3000, "crm_id:A", "ecid:c2"))
    evicted = [c["identity"] for c in result.changes if c["type"] == "identity_evicted"]
    assert evicted == ["device_id:old-tablet"]
    assert await both.members("crm_id:A") == ["crm_id:A", "ecid:c1", "ecid:c2"]
    await both.check()


async def test_quarantine_of_identity_moving_between_people(client: redis.asyncio.Redis) -> None:
    both = Both(client, config(quarantine_max_reassignments=2, quarantine_window_s=60))
    junk = "phone:+15550100"  # a placeholder number typed for every customer
    for n, person in enumerate(["A", "B", "C"]):
        result = await both.stitch(make_event(f"e{n}", 1000 * (n + 1), f"crm_id:{person}", junk))
    assert "identity_quarantined" not in types(result)
    result = await both.stitch(make_event("e3", 5000, "crm_id:D", junk))
    assert "identity_quarantined" in types(result)
    assert await both.store.quarantined() == [junk]
    assert await both.members(junk) == [junk]
    # Its events still count for the other identities, but it links nothing.
    assert (await both.stitch(make_event("e4", 6000, "crm_id:E", junk))).outcomes == ["ok"]
    assert await both.members("crm_id:E") == ["crm_id:E"]
    assert (await both.stitch(make_event("e5", 6000, junk))).outcomes == [
        "rejected:all_identities_quarantined"
    ]
    was_quarantined, released = await both.store.release(junk, "req")
    both.model.release(junk, "req")
    assert was_quarantined and types(released.changes) == ["identity_released"]
    assert (await both.store.release(junk, "req-again")) == (False, ChangeResult(set(), set(), []))
    assert await both.store.quarantined() == []
    await both.check()


async def test_shared_device_follows_every_login_and_is_never_quarantined(
    client: redis.asyncio.Redis,
) -> None:
    """The opt-in shared-device rule: a device follows the person who logged in last,
    however often the people take turns; moving is its rule, not a sign of a junk
    identifier."""
    both = Both(
        client, config(SHARED_DEVICES, quarantine_max_reassignments=2, quarantine_window_s=60)
    )
    tablet = "device_id:family-tablet"
    parents = ["crm_id:mum", "email:dad@x.com"]
    for n in range(8):
        result = await both.stitch(make_event(f"e{n}", 1000 * (n + 1), parents[n % 2], tablet))
        assert "identity_quarantined" not in types(result)
        assert await both.members(tablet) == sorted([parents[n % 2], tablet])
    assert await both.store.quarantined() == []
    await both.check()


async def test_reading_by_identity_is_the_same_as_lookup_then_read(
    client: redis.asyncio.Redis,
) -> None:
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "crm_id:ann", "email:ann@x.com"))
    pid = await both.pid("email:ann@x.com")
    assert pid is not None
    by_identity = await both.store.read_profile_of("email:ann@x.com")
    assert by_identity == (await both.store.read_profiles([pid]))[pid]
    assert by_identity is not None and by_identity.profile_id == pid
    assert await both.store.read_profile_of("email:nobody@x.com") is None


async def test_dead_letters_are_tallied_by_reason(client: redis.asyncio.Redis) -> None:
    store = GraphStore(client, config())
    assert (await store.counts()).deadletters == {}
    await store.count_deadletters({"bad_format": 2, "oversized": 1})
    await store.count_deadletters({"bad_format": 3})
    assert (await store.counts()).deadletters == {"bad_format": 5, "oversized": 1}


def rules(result: StitchResult) -> set[object]:
    return {c["rule"] for c in result.changes if c["type"] == "link_removed"}


async def test_family_tablet_of_a_crm_parent_and_an_email_parent(
    client: redis.asyncio.Redis,
) -> None:
    """The opt-in shared-device rule: no unique namespace sees a conflict, yet the tablet
    does not join the parents: it follows the last login, and its anonymous events follow
    it. (Under the default the parents are one graph: see the next test.)"""
    both = Both(client, SHARED_DEVICES)
    await both.stitch(make_event("e1", 1000, "crm_id:mum", "device_id:tab"))
    await both.stitch(make_event("e2", 2000, "ecid:app", "device_id:tab", primary="ecid:app"))
    result = await both.stitch(make_event("e3", 3000, "email:dad@x.com", "device_id:tab"))
    assert rules(result) == {"4.2 shared device"}
    assert await both.members("crm_id:mum") == ["crm_id:mum"]
    assert await both.members("email:dad@x.com") == [
        "device_id:tab",
        "ecid:app",
        "email:dad@x.com",
    ]
    await both.stitch(make_event("e4", 4000, "device_id:tab", type_="app.browse"))
    dad = await both.pid("email:dad@x.com")
    profile = (await both.store.read_profiles([dad or ""]))[dad or ""]
    assert profile is not None and profile.count == 3  # dad's login, the cookie's, e4
    await both.stitch(make_event("e5", 5000, "crm_id:mum", "device_id:tab"))
    assert await both.members("crm_id:mum") == ["crm_id:mum", "device_id:tab", "ecid:app"]
    assert await both.members("email:dad@x.com") == ["email:dad@x.com"]
    await both.check()


async def test_the_contract_joins_what_a_device_links_across_namespaces(
    client: redis.asyncio.Redis,
) -> None:
    """CONTRACT 4.1 under the default configuration: a device used with a CRM id and then
    an email links them (a connected set is one person). Only a second value of one
    unique namespace (a second CRM id) makes rule 4.2 rebuild, most recent links first:
    the device follows that last login, and the email, linked only through the device
    and more recently than the first CRM id, goes with it."""
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "crm_id:mum", "device_id:tab"))
    result = await both.stitch(make_event("e2", 2000, "email:dad@x.com", "device_id:tab"))
    assert "link_removed" not in types(result)
    assert await both.members("crm_id:mum") == ["crm_id:mum", "device_id:tab", "email:dad@x.com"]
    await both.stitch(make_event("e3", 3000, "crm_id:kid", "device_id:tab"))
    assert await both.members("crm_id:kid") == ["crm_id:kid", "device_id:tab", "email:dad@x.com"]
    assert await both.members("crm_id:mum") == ["crm_id:mum"]
    await both.check()


async def test_a_login_by_email_then_by_crm_id_on_one_browser_is_one_person(
    client: redis.asyncio.Redis,
) -> None:
    """Adobe's linking walkthrough, under the default configuration (CONTRACT 4.1): a
    visitor logs in with their email, later with their CRM id on the same browser: one
    graph of three identities, one profile holding both logins' events."""
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "ecid:X", "email:e@x.com"))
    first = await both.pid("ecid:X")
    result = await both.stitch(make_event("e2", 2000, "ecid:X", "crm_id:1"))
    assert "link_removed" not in types(result) and result.ceased == set()
    assert await both.members("crm_id:1") == ["crm_id:1", "ecid:X", "email:e@x.com"]
    assert {await both.pid(k) for k in ("ecid:X", "email:e@x.com", "crm_id:1")} == {first}
    profile = (await both.store.read_profiles([first or ""]))[first or ""]
    assert profile is not None and profile.count == 2
    await both.check()


async def test_one_person_two_credentials_on_one_device(client: redis.asyncio.Redis) -> None:
    """The opt-in shared-device rule's price: nothing tells two credentials of one person
    from two people, so the device follows the last login until a record (here a loyalty
    sign-up with the email) joins them. (The default joins them at once: above.)"""
    both = Both(client, SHARED_DEVICES)
    await both.stitch(make_event("e1", 1000, "email:pat@x.com", "device_id:phone"))
    await both.stitch(make_event("e2", 2000, "loyalty_id:L9", "device_id:phone"))
    assert await both.members("loyalty_id:L9") == ["device_id:phone", "loyalty_id:L9"]
    assert await both.members("email:pat@x.com") == ["email:pat@x.com"]
    result = await both.stitch(make_event("e3", 3000, "loyalty_id:L9", "email:pat@x.com"))
    assert "graphs_merged" in types(result)
    assert await both.members("email:pat@x.com") == [
        "device_id:phone",
        "email:pat@x.com",
        "loyalty_id:L9",
    ]
    await both.check()


@pytest.mark.parametrize("cfg", [DEFAULTS, SHARED_DEVICES], ids=["default", "shared-devices"])
async def test_kiosk_used_by_many_people_joins_none(
    client: redis.asyncio.Redis, cfg: IdentityConfig
) -> None:
    """A store kiosk follows each check-in in turn (rule 4.2's rebuild: two CRM ids),
    past the circuit breaker's 5 moves a day, under the default configuration and the
    opt-in one alike: a device's moves are its rule, so it is never quarantined."""
    both = Both(client, cfg)
    kiosk = "device_id:kiosk-7"
    for n in range(12):
        result = await both.stitch(make_event(f"k{n}", 1000 * (n + 1), f"crm_id:P{n}", kiosk))
        assert "identity_quarantined" not in types(result)
        assert await both.members(kiosk) == [f"crm_id:P{n}", kiosk]
        for m in range(n):
            assert await both.members(f"crm_id:P{m}") == [f"crm_id:P{m}"]
    assert await both.store.quarantined() == []
    await both.check()


async def test_a_namespace_made_unique_rebuilds_a_graph_on_its_next_event(
    client: redis.asyncio.Redis,
) -> None:
    """A configuration change can leave a stored graph against the rules: two phones, once
    phone is unique. Its next event, common as it looks (known identities, linked), takes
    the full step and rebuilds the graph."""
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "crm_id:A", "phone:+15550100"))
    await both.stitch(make_event("e2", 2000, "crm_id:A", "phone:+15550101"))
    assert await both.members("crm_id:A") == ["crm_id:A", "phone:+15550100", "phone:+15550101"]
    phone = dataclasses.replace(DEFAULTS.namespaces["phone"], unique=True)
    unique = config(namespaces={**DEFAULTS.namespaces, "phone": phone})
    both.store = GraphStore(client, unique)
    both.model.ns = unique.for_redis()["namespaces"]
    result = await both.stitch(make_event("e3", 3000, "crm_id:A", "phone:+15550100"))
    assert "link_removed" in types(result)
    assert await both.members("crm_id:A") == ["crm_id:A", "phone:+15550100"]
    await both.check()


async def test_a_delete_of_an_identity_already_deleted_says_so(
    client: redis.asyncio.Redis,
) -> None:
    """A later request (a new request id) for an identity deleted before finds nothing,
    and its answer names the target as suppressed already, so that its receipt can say
    why; a target no request named before is not; a redelivery answers as the first."""
    both = Both(client)
    await both.stitch(make_event("e1", 1000, "email:a@x.com", "ecid:c1"))
    requests = [
        (["email:a@x.com"], "req-1", [], ["email:a@x.com"]),
        (["email:a@x.com", "phone:+15550100"], "req-2", ["email:a@x.com"], []),
        (["email:a@x.com"], "req-1", [], ["email:a@x.com"]),  # redelivered
    ]
    for targets, request, already, deleted in requests:
        result = await both.store.delete_identities(targets, request)
        expected = both.model.delete_identities(targets, request)
        assert result.already == expected.already == already
        assert result.deleted == expected.outcomes == deleted
    profile = await both.store.delete_profile_of("email:a@x.com", "req-3")
    assert profile.already == both.model.delete_profile_of("email:a@x.com", "req-3").already
    assert profile.already == ["email:a@x.com"] and profile.deleted == []
    await both.check()
