"""The API's handlers (pipeline.api.handlers) against a small in-memory GraphStore."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import msgpack
import pytest

from pipeline.api.handlers import Api, BadRequest, NotFound, shortest_path
from pipeline.identity.commands import GraphStore
from pipeline.identity.config import IdentityConfig, load
from pipeline.identity.replies import (
    AttributeValue,
    ChangeResult,
    Counts,
    DeleteResult,
    Link,
    Member,
    RawGraph,
    RawProfile,
)
from pipeline.publish.profiles import PublishSettings
from pipeline.records import Outputs
from pipeline.resources import SHARED_DEVICES_CONFIG, schema_path
from pipeline.stages.privacy import Receipt
from pipeline.timefmt import iso_ms

T = 1_796_083_200_000


def link(a: str, b: str, n: int) -> Link:
    return Link(a, b, T + n, T + n, n, f"ev-{n}", "cdp.events.web", 0, n)


class FakeStore:
    """The read and delete calls of GraphStore the handlers use, over plain dicts."""

    def __init__(self, graphs: Sequence[RawGraph], attributes: Sequence[AttributeValue] = ()):
        self.graphs = {g.profile_id: g for g in graphs}
        self.index = {m.key: g.profile_id for g in graphs for m in g.members}
        self.attributes = list(attributes)
        self.deleted: list[tuple[list[str], str]] = []
        self.quarantine = {"ecid:junk-cookie"}

    async def lookup(self, key: str) -> str | None:
        return self.index.get(key)

    async def graph(self, profile_id: str) -> RawGraph | None:
        return self.graphs.get(profile_id)

    async def read_profiles(self, pids: Sequence[str]) -> dict[str, RawProfile | None]:
        def raw(g: RawGraph) -> RawProfile:
            return RawProfile(g.profile_id, 3, T, g.members, self.attributes, [], 1, {}, {})

        return {pid: raw(self.graphs[pid]) if pid in self.graphs else None for pid in pids}

    async def read_profile_of(self, key: str) -> RawProfile | None:
        pid = self.index.get(key)
        return (await self.read_profiles([pid]))[pid] if pid else None

    async def delete_profile_of(self, key: str, request_id: str) -> DeleteResult:
        profile_id = self.index[key]
        keys = sorted(m.key for m in self.graphs[profile_id].members)
        self.deleted.append((keys, request_id))
        return DeleteResult(keys, set(), {profile_id}, [])

    async def counts(self) -> Counts:
        return Counts({"crm_id": 2, "email": 2}, {2: 1, 5: 1}, 1, {"bad_format": 3}, T, False)

    async def delete_identities(self, keys: Sequence[str], request_id: str) -> DeleteResult:
        self.deleted.append((list(keys), request_id))
        present = [k for k in keys if k in self.index]
        ceased = {self.index[k] for k in present}
        return DeleteResult(present, set(), ceased, [])

    async def quarantined(self) -> list[str]:
        return sorted(self.quarantine)

    async def release(self, key: str, request_id: str) -> tuple[bool, ChangeResult]:
        if key not in self.quarantine:
            return False, ChangeResult(set(), set(), [])
        self.quarantine.discard(key)
        return True, ChangeResult(set(), set(), [{"type": "identity_released", "identity": key}])


def graph(pid: str, links: Sequence[Link]) -> RawGraph:
    keys = sorted({k for ln in links for k in (ln.a, ln.b)})
    return RawGraph(pid, [Member(k, T, T) for k in keys], list(links))


CHAIN = graph(
    "p_01",
    [
        link("crm_id:C-1", "email:e@example.com", 1),
        link("email:e@example.com", "ecid:cookie-1", 2),
        link("ecid:cookie-1", "device_id:dev-1", 3),
        link("crm_id:C-1", "phone:+14155552671", 4),
        link("device_id:dev-1", "phone:+14155552671", 5),
    ],
)
OTHER = graph("p_02", [link("crm_id:C-2", "email:f@example.com", 6)])


@pytest.fixture(scope="module")
def config() -> IdentityConfig:
    return load()


@pytest.fixture
def store() -> FakeStore:
    attrs = [
        AttributeValue("tier", "web", msgpack.packb("bronze"), T + 9, 2, "ecid:cookie-1"),
        AttributeValue("tier", "crm", msgpack.packb("gold"), T + 1, 1, "crm_id:C-1"),
    ]
    return FakeStore([CHAIN, OTHER], attrs)


@pytest.fixture
def api(store: FakeStore, config: IdentityConfig) -> Api:
    settings = PublishSettings(precedence=("crm", "web"), recent_limit=5)
    return Api(cast(GraphStore, store), config, settings)


def test_shortest_path_takes_the_fewest_links() -> None:
    path = shortest_path(CHAIN, "crm_id:C-1", "device_id:dev-1")
    assert path is not None
    assert [ln.event_id for ln in path] == ["ev-4", "ev-5"]
    assert [ln.event_id for ln in shortest_path(CHAIN, "email:e@example.com", "crm_id:C-1") or []]
    assert shortest_path(CHAIN, "crm_id:C-1", "crm_id:C-1") == []


def test_shortest_path_is_none_without_a_chain() -> None:
    assert shortest_path(CHAIN, "crm_id:C-1", "crm_id:C-2") is None
    lonely = RawGraph("p_03", [Member("crm_id:A", T, T), Member("crm_id:B", T, T)], [])
    assert shortest_path(lonely, "crm_id:A", "crm_id:B") is None


async def test_explain_gives_the_path_and_its_evidence(api: Api) -> None:
    status, body = await api.explain({"a": "crm_id:C-1", "b": "device_id:DEV-1"})
    assert status == 200
    assert body["linked"] is True
    assert body["profile_id"] == "p_01"
    assert body["b"] == {"namespace": "device_id", "id": "dev-1"}  # normalised
    assert [step["event"]["event_id"] for step in body["path"]] == ["ev-4", "ev-5"]
    assert body["path"][0]["a"] == {"namespace": "crm_id", "id": "C-1"}


async def test_explain_says_why_not(api: Api, store: FakeStore) -> None:
    _, apart = await api.explain({"a": "crm_id:C-1", "b": "crm_id:C-2"})
    assert apart["linked"] is False
    assert "different profiles" in apart["reason"]
    assert "shared device" not in apart["reason"]
    # The default has no followers (CONTRACT 4.1); the opt-in file names the rule.
    _, device = await api.explain({"a": "device_id:dev-1", "b": "crm_id:C-2"})
    assert "shared device" not in device["reason"]
    shared = load(schema_path(SHARED_DEVICES_CONFIG))
    opted_in = Api(cast(GraphStore, store), shared, PublishSettings())
    _, device = await opted_in.explain({"a": "device_id:dev-1", "b": "crm_id:C-2"})
    assert "device_id:dev-1 follows one person (rule 4.2 shared device)" in device["reason"]
    _, unknown = await api.explain({"a": "crm_id:C-1", "b": "crm_id:NOBODY"})
    assert unknown == {
        "a": {"namespace": "crm_id", "id": "C-1"},
        "b": {"namespace": "crm_id", "id": "NOBODY"},
        "linked": False,
        "reason": "crm_id:NOBODY is in no graph",
    }


async def test_profile_by_identity_and_merge_policy_per_request(api: Api) -> None:
    status, doc = await api.profile_by_identity({"namespace": "email", "id": " E@Example.com "})
    assert status == 200
    assert doc["profile_id"] == "p_01"
    assert doc["attributes"] == {"tier": "bronze"}
    query = {"namespace": "email", "id": "e@example.com", "merge_policy": "source_precedence"}
    assert (await api.profile_by_identity(query))[1]["attributes"] == {"tier": "gold"}
    assert (await api.profile_by_id("p_01", {"merge_policy": "source_precedence"}))[1][
        "attributes"
    ] == {"tier": "gold"}


async def test_lookups_and_deletes_take_a_value_in_either_unicode_form(
    api: Api, store: FakeStore
) -> None:
    composed = graph("p_03", [link("crm_id:C-3", "email:jos\u00e9@example.com", 7)])
    store.graphs["p_03"] = composed
    store.index.update({m.key: "p_03" for m in composed.members})
    decomposed = {"namespace": "email", "id": "Jose\u0301@example.com"}
    assert (await api.profile_by_identity(decomposed))[1]["profile_id"] == "p_03"
    _, receipt = await api.delete_identity(decomposed)
    assert receipt["deleted_identities"] == ["email:jos\u00e9@example.com"]


async def test_unknown_identities_and_ids_are_404(api: Api) -> None:
    assert (await api.profile_by_identity({"namespace": "crm_id", "id": "X"}))[0] == 404
    assert (await api.profile_by_id("p_99", {}))[0] == 404
    status, body = await api.graph({"namespace": "crm_id", "id": "X"})
    assert (status, set(body)) == (404, {"error"})


async def test_graph_lists_identities_and_links_with_evidence(api: Api) -> None:
    status, body = await api.graph({"namespace": "crm_id", "id": "C-2"})
    assert status == 200
    assert [i["id"] for i in body["identities"]] == ["C-2", "f@example.com"]
    assert body["links"][0]["event"] == {
        "event_id": "ev-6",
        "topic": "cdp.events.web",
        "partition": 0,
        "offset": 6,
    }


async def test_delete_identity_answers_a_receipt_and_hands_it_on(
    api: Api, store: FakeStore
) -> None:
    handed: list[tuple[Outputs, Receipt | None]] = []

    async def emit(out: Outputs, receipt: Receipt | None) -> None:
        handed.append((out, receipt))

    api.emit = emit
    query = {"namespace": "crm_id", "id": "C-2", "request_id": "req-1"}
    status, receipt = await api.delete_identity(query)
    assert status == 200
    assert receipt["status"] == "deleted"
    assert receipt["deleted_identities"] == ["crm_id:C-2"]
    (out, sent), *_ = handed
    assert sent == receipt and set(out.updates) == set(receipt["ceased_profile_ids"])
    assert store.deleted == [(["crm_id:C-2"], "req-1")]
    _, generated = await api.delete_identity({"namespace": "crm_id", "id": "C-9"})
    assert generated["request_id"].startswith("http-")
    assert generated["status"] == "not_found"


async def test_release_hands_its_change_to_the_worker(api: Api, store: FakeStore) -> None:
    handed: list[tuple[Outputs, Receipt | None]] = []

    async def emit(out: Outputs, receipt: Receipt | None) -> None:
        handed.append((out, receipt))

    api.emit = emit
    store.quarantine = {"ecid:kiosk"}
    assert await api.quarantined({}) == (
        200,
        {"identities": [{"namespace": "ecid", "id": "kiosk"}]},
    )
    status, body = await api.release({"namespace": "ecid", "id": "kiosk"})
    assert status == 200 and body["released"] is True
    assert [c["type"] for c in handed[0][0].changes] == ["identity_released"]
    assert handed[0][1] is None
    _, again = await api.release({"namespace": "ecid", "id": "kiosk"})
    assert again["released"] is False and again["changes"] == []


async def test_delete_profile_deletes_every_identity_of_the_profile(
    api: Api, store: FakeStore
) -> None:
    status, receipt = await api.delete_profile({"namespace": "email", "id": "F@example.com"})
    assert status == 200
    assert (receipt["action"], receipt["status"]) == ("delete_profile", "deleted")
    assert receipt["deleted_identities"] == ["crm_id:C-2", "email:f@example.com"]
    assert receipt["ceased_profile_ids"] == ["p_02"]


@pytest.mark.parametrize(
    ("policy", "winner", "loser"),
    [("timestamp", "bronze", "gold"), ("source_precedence", "gold", "bronze")],
)
async def test_attribute_sources_give_the_winner_its_origin_and_the_losers(
    api: Api, policy: str, winner: str, loser: str
) -> None:
    status, body = await api.attribute_sources("p_01", {"merge_policy": policy})
    assert status == 200
    assert (body["profile_id"], body["merge_policy"], body["version"]) == ("p_01", policy, 3)
    (tier,) = body["paths"]
    assert (tier["path"], tier["value"]) == ("tier", winner)
    assert [lost["value"] for lost in tier["losers"]] == [loser]
    origin = {"web": ("ecid", "cookie-1", T + 9), "crm": ("crm_id", "C-1", T + 1)}
    for source in [tier, *tier["losers"]]:
        namespace, value, at = origin[source["channel"]]
        assert source["identity"] == {"namespace": namespace, "id": value}
        assert source["timestamp"] == iso_ms(at)
    assert (await api.attribute_sources("p_99", {}))[0] == 404


async def test_namespaces_quarantine_and_overview(api: Api) -> None:
    _, config = await api.namespaces({})
    assert config["max_graph_size"] == 50
    assert config["namespaces"][0] == {
        "name": "crm_id",
        "kind": "person",
        "priority": 1,
        "unique": True,
        "format": "[A-Za-z0-9._\\-]{1,128}",
    }
    phone = next(n for n in config["namespaces"] if n["name"] == "phone")
    assert phone["format"] is None  # its check is e164's
    assert await api.quarantined({}) == (
        200,
        {"identities": [{"namespace": "ecid", "id": "junk-cookie"}]},
    )
    assert await api.overview({}) == (
        200,
        {
            "profiles": 2,
            "identities": {"total": 4, "by_namespace": {"crm_id": 2, "email": 2}},
            "graph_sizes": {"2": 1, "5": 1},
            "quarantined": 1,
            "deadletters": {"total": 3, "by_reason": {"bad_format": 3}},
            "counted_since": iso_ms(T),
            "complete": True,
        },
    )


LONG = "x" * 1025
MALFORMED: list[tuple[str, dict[str, str], str]] = [
    ("profile_by_identity", {"id": "C-1"}, "'namespace' is required"),
    ("profile_by_identity", {"namespace": "crm_id"}, "'id' is required"),
    ("profile_by_identity", {"namespace": "crm_id", "id": ""}, "'id' is required"),
    ("profile_by_identity", {"namespace": "shoe_size", "id": "42"}, "not configured"),
    ("profile_by_identity", {"namespace": "email", "id": "not-an-email"}, "no '@'"),
    ("delete_identity", {"namespace": "email", "id": "null"}, "blocked"),
    ("profile_by_identity", {"namespace": "crm_id", "id": LONG}, "longer than 1024"),
    ("profile_by_identity", {"namespace": "n" * 65, "id": "x"}, "longer than 64"),
    (
        "profile_by_identity",
        {"namespace": "crm_id", "id": "C-1", "merge_policy": "newest"},
        "merge_policy must be one of",
    ),
    (
        "profile_by_identity",
        {"namespace": "crm_id", "id": "C-1", "merge_policy": ""},
        "merge_policy must be one of",
    ),
    ("graph", {"namespace": "crm_id"}, "'id' is required"),
    ("graph", {"namespace": "nope", "id": "x"}, "not configured"),
    ("explain", {"b": "crm_id:C-1"}, "'a' is required"),
    ("explain", {"a": "crm_id:C-1"}, "'b' is required"),
    ("explain", {"a": "crm_id", "b": "crm_id:C-1"}, "a must be namespace:id"),
    ("explain", {"a": ":C-1", "b": "crm_id:C-1"}, "a must be namespace:id"),
    ("explain", {"a": "crm_id:C-1", "b": "crm_id:"}, "b must be namespace:id"),
    ("explain", {"a": "crm_id:C-1", "b": "nope:x"}, "not configured"),
    ("explain", {"a": "crm_id:" + LONG, "b": "crm_id:C-1"}, "longer than 1024"),
    ("delete_profile", {"namespace": "crm_id"}, "'id' is required"),
    ("delete_profile", {"namespace": "email", "id": "nope"}, "not an email address"),
    ("delete_identity", {"id": "C-1"}, "'namespace' is required"),
    ("delete_identity", {"namespace": "nope", "id": "C-1"}, "not configured"),
    (
        "delete_identity",
        {"namespace": "crm_id", "id": "C-1", "request_id": "r" * 257},
        "longer than 256",
    ),
]


@pytest.mark.parametrize(("handler", "query", "message"), MALFORMED)
async def test_malformed_queries_are_bad_requests(
    api: Api, store: FakeStore, handler: str, query: dict[str, str], message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        await getattr(api, handler)(query)
    assert store.deleted == [], "a malformed delete must not delete anything"


@pytest.mark.parametrize("handler", ["profile_by_identity", "graph"])
@pytest.mark.parametrize("value", ["null", "test@test.com"])
async def test_a_blocked_value_is_looked_up_as_not_found(
    api: Api, handler: str, value: str
) -> None:
    # Well formed, and never in a graph: 404 as for an identity not seen (CONTRACT 6).
    with pytest.raises(NotFound, match="blocked"):
        await getattr(api, handler)({"namespace": "email", "id": value})


@pytest.mark.parametrize("profile_id", ["", "p_" + "0" * 63])
async def test_malformed_profile_ids_are_bad_requests(api: Api, profile_id: str) -> None:
    with pytest.raises(BadRequest, match="malformed profile id"):
        await api.profile_by_id(profile_id, {})


@pytest.mark.parametrize("handler", ["profile_by_id", "attribute_sources"])
async def test_bad_merge_policy_on_profile_by_id(api: Api, handler: str) -> None:
    with pytest.raises(BadRequest, match="merge_policy"):
        await getattr(api, handler)("p_01", {"merge_policy": "TIMESTAMP"})
    with pytest.raises(BadRequest, match="malformed profile id"):
        await getattr(api, handler)("", {})
