"""CONTRACT 5, clause by clause: the profile document as the contract states it, built
(pipeline.profile.assemble) from what the Redis scripts store."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio

from pipeline.ingest import flatten_attributes
from pipeline.profile.assemble import assemble
from tests.identity.support import DEFAULTS, Both, make_event, redis_url

pytestmark = pytest.mark.integration


@pytest.fixture
def target_url() -> str:
    """One Redis is enough here: the cluster runs the same scripts (test_identity_examples)."""
    return redis_url()


async def document(both: Both, key: str, policy: str = "timestamp") -> dict[str, Any]:
    raw = await both.store.read_profile_of(key)
    assert raw is not None
    precedence = ("crm", "web")
    return assemble(raw, DEFAULTS, policy=policy, precedence=precedence, recent_limit=3)


async def attrs_after(both: Both, event_id: str, ts: int, attributes: dict[str, Any]) -> Any:
    flat = flatten_attributes(attributes)
    await both.stitch(make_event(event_id, ts, "crm_id:A", attributes=flat))
    return (await document(both, "crm_id:A"))["attributes"]


async def test_the_latest_event_time_wins_per_attribute_path(client: redis.asyncio.Redis) -> None:
    both = Both(client)
    gold = {"loyalty": {"tier": "gold", "points": 10}}
    assert await attrs_after(both, "e1", 1000, gold) == gold
    silver = {"loyalty": {"tier": "silver"}}
    assert await attrs_after(both, "e2", 2000, silver) == {
        "loyalty": {"tier": "silver", "points": 10}
    }
    # A late event loses to newer values of its paths and fills the others.
    late = {"loyalty": {"tier": "bronze"}, "firstName": "Evan"}
    assert await attrs_after(both, "e3", 1500, late) == {
        "loyalty": {"tier": "silver", "points": 10},
        "firstName": "Evan",
    }
    # Equal event times: the later arrival wins (README).
    same = {"loyalty": {"tier": "platinum"}}
    assert (await attrs_after(both, "e4", 2000, same))["loyalty"]["tier"] == "platinum"
    # A path that becomes a scalar replaces the object below it ...
    assert (await attrs_after(both, "e5", 3000, {"loyalty": "none"}))["loyalty"] == "none"
    # ... a late value below it stays hidden, and a newer one makes it an object again.
    assert (await attrs_after(both, "e6", 2500, {"loyalty": {"points": 99}}))["loyalty"] == "none"
    assert (await attrs_after(both, "e7", 4000, {"loyalty": {"tier": "gold"}}))["loyalty"] == {
        "tier": "gold"
    }
    # A winning null removes its path.
    assert await attrs_after(both, "e8", 5000, {"firstName": None}) == {"loyalty": {"tier": "gold"}}
    await both.check()


async def test_attributes_merge_across_identities_and_policies(
    client: redis.asyncio.Redis,
) -> None:
    """Fragments of one graph merge by event time whichever identity holds them; the
    source-precedence policy ranks channels first, the latest within one channel."""
    both = Both(client)
    crm = make_event("crm", 1000, "crm_id:A", channel="crm", attributes={"tier": "gold"})
    web = make_event("web", 2000, "ecid:c1", attributes={"tier": "typed-in", "theme": "dark"})
    await both.stitch(crm, web)
    await both.stitch(make_event("login", 3000, "crm_id:A", "ecid:c1"))
    assert (await document(both, "ecid:c1"))["attributes"] == {"tier": "typed-in", "theme": "dark"}
    by_source = await document(both, "ecid:c1", "source_precedence")
    assert by_source["attributes"] == {"tier": "gold", "theme": "dark"}
    await both.check()


async def test_count_counts_distinct_events_and_recent_is_newest_first_and_bounded(
    client: redis.asyncio.Redis,
) -> None:
    both = Both(client)
    cookie = make_event("e1", 1000, "ecid:c1")
    await both.stitch(cookie, cookie)  # one event, twice in one batch
    await both.stitch(make_event("e2", 4000, "email:a@x.com"))
    await both.stitch(make_event("e3", 3000, "email:a@x.com", "ecid:c1"))  # merges them
    await both.stitch(cookie, make_event("e2", 4000, "email:a@x.com"))  # redelivered
    await both.stitch(make_event("e4", 500, "ecid:c1"))  # late
    doc = await document(both, "ecid:c1")
    assert doc["events"]["count"] == 4
    # make_event's timeline entry is [event_id, ts, channel, type].
    assert [r[0] for r in doc["events"]["recent"]] == ["e2", "e3", "e1"]
    times = {i["id"]: (i["first_seen"], i["last_seen"]) for i in doc["identities"]}
    assert times == {
        "a@x.com": ("1970-01-01T00:00:03.000Z", "1970-01-01T00:00:04.000Z"),
        "c1": ("1970-01-01T00:00:00.500Z", "1970-01-01T00:00:03.000Z"),
    }
    await both.check()


async def test_version_grows_with_every_change_and_only_then(client: redis.asyncio.Redis) -> None:
    both = Both(client)
    first = make_event("e1", 1000, "crm_id:A", "ecid:c1")
    await both.stitch(first)
    v1 = await document(both, "crm_id:A")
    await both.stitch(first)  # a redelivery changes nothing
    assert await document(both, "crm_id:A") == v1
    await both.stitch(make_event("e2", 500, "ecid:c2"))
    other = (await document(both, "ecid:c2"))["version"]
    await both.stitch(make_event("e3", 400, "ecid:c2", "ecid:c1"))  # a late merge
    merged = await document(both, "crm_id:A")
    assert merged["version"] > max(v1["version"], other)
    assert merged["updated_at"] >= v1["updated_at"]
    await both.check()
