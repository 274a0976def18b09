"""Merge policies (pipeline.profile.merge): which stored value of a path a profile shows."""

from __future__ import annotations

import itertools

import msgpack
import pytest

from pipeline.identity.replies import AttributeValue, RawProfile
from pipeline.model import POLICIES
from pipeline.profile.assemble import merged_attributes
from pipeline.profile.merge import ranked, winners

PRECEDENCE = ("crm", "loyalty", "web")


def value(
    path: str, channel: str, v: object, ts: int, seq: int, identity: str = "crm_id:A"
) -> AttributeValue:
    return AttributeValue(path, channel, msgpack.packb(v), ts, seq, identity)


def raw(*attributes: AttributeValue) -> RawProfile:
    return RawProfile("p_1", 1, 0, [], list(attributes), [], 0, {}, {})


def shown(policy: str, *attributes: AttributeValue) -> dict[str, object]:
    return merged_attributes(raw(*attributes), policy, PRECEDENCE)


def test_timestamp_latest_event_time_wins_per_path() -> None:
    attrs = [
        value("tier", "crm", "gold", ts=30, seq=1),
        value("tier", "web", "silver", ts=20, seq=2),  # arrived later, older event
        value("name", "web", "Eve", ts=25, seq=3),
        value("name", "crm", "Evan", ts=10, seq=4),
    ]
    assert shown("timestamp", *attrs) == {"tier": "gold", "name": "Eve"}


def test_timestamp_tie_goes_to_the_later_arrival_whatever_the_read_order() -> None:
    first = value("tier", "crm", "gold", ts=10, seq=7)
    second = value("tier", "web", "silver", ts=10, seq=8)
    for order in itertools.permutations([first, second]):
        assert shown("timestamp", *order) == {"tier": "silver"}


def test_source_precedence_channel_order_beats_time() -> None:
    attrs = [
        value("tier", "web", "bronze", ts=90, seq=1),
        value("tier", "loyalty", "silver", ts=50, seq=2),
        value("tier", "crm", "gold", ts=10, seq=3),
    ]
    assert shown("source_precedence", *attrs) == {"tier": "gold"}
    assert shown("timestamp", *attrs) == {"tier": "bronze"}


def test_source_precedence_latest_within_one_source() -> None:
    attrs = [
        value("tier", "crm", "gold", ts=20, seq=1),
        value("tier", "crm", "platinum", ts=30, seq=2),
        value("tier", "crm", "old", ts=5, seq=3),
    ]
    assert shown("source_precedence", *attrs) == {"tier": "platinum"}


def test_source_precedence_unlisted_channels_rank_after_listed_ones() -> None:
    attrs = [
        value("tier", "kiosk", "kiosk-new", ts=99, seq=1),
        value("tier", "web", "web-old", ts=1, seq=2),
    ]
    assert shown("source_precedence", *attrs) == {"tier": "web-old"}
    # Among unlisted channels only, the latest wins.
    only_unlisted = [
        value("tier", "kiosk", "k", ts=5, seq=1),
        value("tier", "pos", "p", ts=6, seq=2),
    ]
    assert shown("source_precedence", *only_unlisted) == {"tier": "p"}


@pytest.mark.parametrize("policy", POLICIES)
def test_a_winning_null_removes_the_path(policy: str) -> None:
    attrs = [
        value("phone_pref", "crm", "sms", ts=10, seq=1),
        value("phone_pref", "crm", None, ts=20, seq=2),
        value("name", "crm", "Evan", ts=10, seq=3),
    ]
    assert shown(policy, *attrs) == {"name": "Evan"}


def test_a_null_that_loses_removes_nothing() -> None:
    attrs = [
        value("tier", "web", None, ts=50, seq=1),
        value("tier", "crm", "gold", ts=10, seq=2),
    ]
    assert shown("source_precedence", *attrs) == {"tier": "gold"}
    assert shown("timestamp", *attrs) == {}
    older_null = [value("tier", "crm", None, ts=5, seq=1), value("tier", "web", "x", ts=6, seq=2)]
    assert shown("timestamp", *older_null) == {"tier": "x"}


def test_a_winning_null_on_an_object_removes_what_was_below_it() -> None:
    attrs = [
        value("loyalty.tier", "crm", "gold", ts=10, seq=1),
        value("loyalty", "crm", None, ts=20, seq=2),
    ]
    assert shown("timestamp", *attrs) == {}
    newer_leaf = [
        value("loyalty", "crm", None, ts=10, seq=1),
        value("loyalty.tier", "crm", "gold", ts=20, seq=2),
    ]
    assert shown("timestamp", *newer_leaf) == {"loyalty": {"tier": "gold"}}


def test_a_cleared_object_stays_empty() -> None:
    attrs = [
        value("prefs.colour", "web", "teal", ts=10, seq=1),
        value("prefs", "web", {}, ts=20, seq=2),
    ]
    assert shown("timestamp", *attrs) == {"prefs": {}}


def test_the_stronger_source_shapes_an_overlapping_path() -> None:
    # crm says address is a string; web (weaker, newer) says it is an object.
    attrs = [
        value("address", "crm", "1 Main St", ts=10, seq=1),
        value("address.city", "web", "Lyon", ts=20, seq=2),
    ]
    assert shown("source_precedence", *attrs) == {"address": "1 Main St"}
    assert shown("timestamp", *attrs) == {"address": {"city": "Lyon"}}


def test_changing_the_policy_needs_no_reprocessing() -> None:
    # The same stored candidates answer both policies: the choice is made at read time.
    stored = raw(
        value("tier", "web", "bronze", ts=90, seq=1),
        value("tier", "crm", "gold", ts=10, seq=2),
    )
    assert merged_attributes(stored, "timestamp", PRECEDENCE) == {"tier": "bronze"}
    assert merged_attributes(stored, "source_precedence", PRECEDENCE) == {"tier": "gold"}
    assert merged_attributes(stored, "timestamp", PRECEDENCE) == {"tier": "bronze"}


def test_winners_keep_one_candidate_per_path_and_reject_unknown_policies() -> None:
    attrs = [value("a", "web", 1, ts=1, seq=1), value("a", "web", 2, ts=2, seq=2)]
    assert [c.seq for c in winners(attrs, "timestamp")] == [2]
    with pytest.raises(ValueError, match="unknown merge policy"):
        winners(attrs, "newest")


@pytest.mark.parametrize("policy", POLICIES)
def test_ranked_puts_each_paths_winner_first_then_every_loser(policy: str) -> None:
    attrs = [
        value("tier", "web", "bronze", ts=90, seq=1),
        value("tier", "crm", "gold", ts=10, seq=2),
        value("tier", "mobile", "silver", ts=50, seq=3),
        value("name", "web", "Eve", ts=5, seq=4),
    ]
    order = ranked(attrs, policy, PRECEDENCE)
    assert list(order) == ["name", "tier"]
    assert {cs[0].path: cs[0] for cs in order.values()} == {
        c.path: c for c in winners(attrs, policy, PRECEDENCE)
    }
    expected = {
        "timestamp": ["bronze", "silver", "gold"],
        "source_precedence": ["gold", "bronze", "silver"],
    }
    assert [msgpack.unpackb(c.value) for c in order["tier"]] == expected[policy]
