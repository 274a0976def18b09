"""Document assembly (pipeline.profile.assemble): the profile document of CONTRACT 5."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import msgpack
import pytest

from pipeline.identity.config import IdentityConfig, load
from pipeline.identity.replies import AttributeValue, Member, RawProfile
from pipeline.profile.assemble import assemble
from pipeline.timefmt import iso_ms

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "schemas" / "profile.schema.json").read_text(encoding="utf-8")
)
T = 1_796_083_200_000


@pytest.fixture(scope="module")
def config() -> IdentityConfig:
    return load()


def summary(n: int, ts: int) -> tuple[int, bytes]:
    entry = {"event_id": f"e{n}", "timestamp": iso_ms(ts), "channel": "web", "type": "x"}
    return ts, msgpack.packb(entry)


def attr(path: str, v: object, ts: int, seq: int) -> AttributeValue:
    return AttributeValue(path, "crm", msgpack.packb(v), ts, seq, "crm_id:C-1")


def profile(recent: list[tuple[int, bytes]] | None = None) -> RawProfile:
    members = [
        Member("ecid:zz-cookie", T, T + 5),
        Member("email:c@example.com", T + 1, T + 2),
        Member("crm_id:C-1", T + 2, T + 9),
        Member("device_id:dev-1", T, T),
        Member("phone:+14155552671", T + 3, T + 3),
        Member("loyalty_id:L-1", T + 4, T + 4),
    ]
    return RawProfile(
        profile_id="p_000000002a",
        version=7,
        updated_at_ms=T + 10,
        members=members,
        attributes=[
            attr("firstName", "Evan", T, 1),
            attr("loyalty.tier", "gold", T, 2),
            attr("loyalty.points", 120, T, 3),
            attr("a\\.b", "dotted key", T, 4),
        ],
        recent=recent if recent is not None else [summary(i, T + i) for i in range(3)],
        count=42,
        counts_by_type={"x": 40, "record": 2},
        counts_by_channel={"web": 41, "crm": 1},
    )


def test_identities_are_ordered_by_namespace_priority(config: IdentityConfig) -> None:
    doc = assemble(profile(), config)
    assert [i["namespace"] for i in doc["identities"]] == [
        "crm_id",
        "loyalty_id",
        "email",
        "phone",
        "device_id",
        "ecid",
    ]
    assert doc["identities"][0] == {
        "namespace": "crm_id",
        "id": "C-1",
        "first_seen": iso_ms(T + 2),
        "last_seen": iso_ms(T + 9),
    }


def test_attributes_are_nested_from_dotted_paths(config: IdentityConfig) -> None:
    doc = assemble(profile(), config)
    assert doc["attributes"] == {
        "firstName": "Evan",
        "loyalty": {"tier": "gold", "points": 120},
        "a.b": "dotted key",
    }


def test_recent_is_newest_first_and_bounded(config: IdentityConfig) -> None:
    shuffled = [summary(i, T + i * 1000) for i in (3, 9, 1, 7, 5, 2, 8)]
    doc = assemble(profile(shuffled), config, recent_limit=4)
    assert [e["event_id"] for e in doc["events"]["recent"]] == ["e9", "e8", "e7", "e5"]
    assert assemble(profile(shuffled), config, recent_limit=0)["events"]["recent"] == []


def test_counts_version_and_times(config: IdentityConfig) -> None:
    doc = assemble(profile(), config)
    assert doc["events"]["count"] == 42
    assert doc["events"]["by_type"] == {"record": 2, "x": 40}
    assert list(doc["events"]["by_channel"]) == ["crm", "web"]
    assert doc["profile_id"] == "p_000000002a"
    assert doc["version"] == 7
    assert doc["updated_at"] == iso_ms(T + 10)


def test_the_document_fits_the_published_schema(config: IdentityConfig) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(assemble(profile(), config))


def test_kept_summaries_give_each_document_its_own(config: IdentityConfig) -> None:
    """Timeline summaries are decoded once and kept: a document that changes its own
    leaves the next one as it was; a summary that is not a map of strings is not kept."""
    odd = (T + 1, msgpack.packb({"event_id": "e9", "timestamp": iso_ms(T + 1), "n": [1]}))
    first = assemble(profile(recent=[summary(1, T), odd]), config)
    first["events"]["recent"][0]["n"].append(2)
    first["events"]["recent"][1]["type"] = "changed"
    again = assemble(profile(recent=[summary(1, T), odd]), config)
    assert again["events"]["recent"] == [
        {"event_id": "e9", "timestamp": iso_ms(T + 1), "n": [1]},
        {"event_id": "e1", "timestamp": iso_ms(T), "channel": "web", "type": "x"},
    ]
