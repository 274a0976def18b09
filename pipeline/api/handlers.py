"""The HTTP API's logic (CONTRACT 6), as plain functions of a query: no web server here."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from pipeline.identity.commands import GraphStore
from pipeline.identity.config import IdentityConfig
from pipeline.identity.replies import AttributeValue, Link, RawGraph, RawProfile
from pipeline.ingest import normalise_identity
from pipeline.ingest.privacy import PrivacyRequest
from pipeline.model import POLICIES, Identity, Rejected
from pipeline.profile.assemble import assemble
from pipeline.profile.merge import ranked
from pipeline.publish.profiles import PublishSettings
from pipeline.records import Outputs
from pipeline.stages.privacy import Receipt, execute, outputs_of, release_quarantine
from pipeline.timefmt import iso_ms

Reply = tuple[int, dict[str, Any]]


class BadRequest(Exception):
    """A malformed query: answered 400 with its message."""


class NotFound(Exception):
    """A look-up of a blocked value: answered 404 with its message, as for an identity no
    graph holds (CONTRACT 6: "404 if none")."""


def _param(query: Mapping[str, str], name: str, limit: int = 1024) -> str:
    value = query.get(name)
    if value is None or value == "":
        raise BadRequest(f"query parameter {name!r} is required")
    if len(value) > limit:
        raise BadRequest(f"query parameter {name!r} is longer than {limit} characters")
    return value


def _identity_ref(ident: Identity) -> dict[str, str]:
    return {"namespace": ident.namespace, "id": ident.id}


def _link_doc(link: Link) -> dict[str, Any]:
    return {
        "a": _identity_ref(Identity.from_key(link.a)),
        "b": _identity_ref(Identity.from_key(link.b)),
        "first_seen": iso_ms(link.first_seen_ms),
        "last_seen": iso_ms(link.last_seen_ms),
        "event": {
            "event_id": link.event_id,
            "topic": link.topic,
            "partition": link.partition,
            "offset": link.offset,
        },
    }


def _source_doc(c: AttributeValue) -> dict[str, Any]:
    return {
        "value": msgpack.unpackb(c.value, raw=False),
        "channel": c.channel,
        "timestamp": iso_ms(c.timestamp_ms),
        "identity": _identity_ref(Identity.from_key(c.identity)),
    }


def shortest_path(graph: RawGraph, start: str, goal: str) -> list[Link] | None:
    """The fewest links joining two identities of one graph (breadth-first)."""
    neighbours: dict[str, list[tuple[str, Link]]] = {}
    for link in graph.links:
        neighbours.setdefault(link.a, []).append((link.b, link))
        neighbours.setdefault(link.b, []).append((link.a, link))
    came_from: dict[str, tuple[str, Link] | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path: list[Link] = []
            step = came_from[node]
            while step is not None:
                path.append(step[1])
                step = came_from[step[0]]
            return path[::-1]
        for nxt, link in neighbours.get(node, []):
            if nxt not in came_from:
                came_from[nxt] = (node, link)
                queue.append(nxt)
    return None


@dataclass
class Api:
    store: GraphStore
    config: IdentityConfig
    publish: PublishSettings
    # Sends what an operator's change (a delete, a release) produced; set by the worker.
    emit: Callable[[Outputs, Receipt | None], Awaitable[None]] | None = None

    def _identity(
        self,
        query: Mapping[str, str],
        ns_name: str = "namespace",
        id_name: str = "id",
        *,
        blocked: type[Exception] = BadRequest,
    ) -> Identity:
        """The identity a query names; ``blocked`` is raised for a blocked value (a look-up
        answers 404: well formed, and no graph ever holds it)."""
        namespace = _param(query, ns_name, 64)
        value = _param(query, id_name)
        try:
            return normalise_identity(self.config, namespace, value)
        except Rejected as rejected:
            error = blocked if rejected.reason == "blocked_value" else BadRequest
            raise error(rejected.detail) from rejected

    def _ref(self, query: Mapping[str, str], name: str) -> Identity:
        namespace, sep, value = _param(query, name).partition(":")
        if not (sep and namespace and value):
            raise BadRequest(f"{name} must be namespace:id, e.g. email:evan@example.com")
        return self._identity({"namespace": namespace, "id": value})

    def _policy(self, query: Mapping[str, str]) -> str:
        policy = query.get("merge_policy", self.publish.policy)
        if policy not in POLICIES:
            raise BadRequest(f"merge_policy must be one of {', '.join(POLICIES)}")
        return policy

    def _document(self, raw: RawProfile, policy: str) -> Reply:
        return 200, assemble(
            raw,
            self.config,
            policy=policy,
            precedence=self.publish.precedence,
            recent_limit=self.publish.recent_limit,
        )

    async def profile_by_identity(self, query: Mapping[str, str]) -> Reply:
        identity = self._identity(query, blocked=NotFound)
        policy = self._policy(query)
        raw = await self.store.read_profile_of(identity.key)
        if raw is None:
            return 404, {"error": f"no profile holds {identity.key}"}
        return self._document(raw, policy)

    async def _by_id(
        self, profile_id: str, query: Mapping[str, str]
    ) -> tuple[str, RawProfile | None]:
        """The policy asked for, and the profile if it exists."""
        if not profile_id or len(profile_id) > 64:
            raise BadRequest("malformed profile id")
        policy = self._policy(query)
        return policy, (await self.store.read_profiles([profile_id])).get(profile_id)

    async def profile_by_id(self, profile_id: str, query: Mapping[str, str]) -> Reply:
        policy, raw = await self._by_id(profile_id, query)
        if raw is None:
            return 404, {"error": f"no profile {profile_id}"}
        return self._document(raw, policy)

    async def attribute_sources(self, profile_id: str, query: Mapping[str, str]) -> Reply:
        """Each stored path's winning value under the policy, with the channel and event
        time it came from, and the values it beat."""
        policy, raw = await self._by_id(profile_id, query)
        if raw is None:
            return 404, {"error": f"no profile {profile_id}"}
        paths = ranked(raw.attributes, policy, self.publish.precedence)
        return 200, {
            "profile_id": profile_id,
            "merge_policy": policy,
            "version": raw.version,
            "paths": [
                {
                    "path": path,
                    **_source_doc(candidates[0]),
                    "losers": [_source_doc(c) for c in candidates[1:]],
                }
                for path, candidates in paths.items()
            ],
        }

    async def graph(self, query: Mapping[str, str]) -> Reply:
        identity = self._identity(query, blocked=NotFound)
        profile_id = await self.store.lookup(identity.key)
        graph = await self.store.graph(profile_id) if profile_id else None
        if graph is None:
            return 404, {"error": f"no graph holds {identity.key}"}
        return 200, {
            "profile_id": graph.profile_id,
            "identities": [
                {
                    **_identity_ref(Identity.from_key(m.key)),
                    "first_seen": iso_ms(m.first_seen_ms),
                    "last_seen": iso_ms(m.last_seen_ms),
                }
                for m in sorted(graph.members, key=lambda m: m.key)
            ],
            "links": [_link_doc(link) for link in graph.links],
        }

    async def explain(self, query: Mapping[str, str]) -> Reply:
        a, b = self._ref(query, "a"), self._ref(query, "b")
        pid_a, pid_b = await self.store.lookup(a.key), await self.store.lookup(b.key)
        base = {"a": _identity_ref(a), "b": _identity_ref(b)}
        if pid_a is None or pid_b is None:
            missing = a.key if pid_a is None else b.key
            return 200, {**base, "linked": False, "reason": f"{missing} is in no graph"}
        if pid_a != pid_b:
            reason = f"they are in different profiles ({pid_a}, {pid_b})"
            followers = [i.key for i in (a, b) if self.config.namespaces[i.namespace].follower]
            if followers:  # the decision itself is a link_removed on cdp.graph-changes
                reason += (
                    f"; {followers[0]} follows one person (rule 4.2 shared device): a device "
                    "or cookie stays with the person most recently linked to it and never "
                    "joins two people"
                )
            return 200, {**base, "linked": False, "reason": reason}
        graph = await self.store.graph(pid_a)
        path = shortest_path(graph, a.key, b.key) if graph else None
        if path is None:
            return 200, {**base, "linked": False, "reason": "no path of links joins them"}
        return 200, {
            **base,
            "linked": True,
            "profile_id": pid_a,
            "path": [_link_doc(link) for link in path],
        }

    async def _delete(self, query: Mapping[str, str], action: str) -> Reply:
        self._identity(query)  # a malformed identity is a 400, not a receipt
        given_id = _param(query, "request_id", 256) if query.get("request_id") else None
        request = PrivacyRequest(
            request_id=given_id or f"http-{uuid.uuid4()}",
            action=action,
            namespace=query["namespace"],
            id=query["id"],
        )
        receipt, result = await execute(self.store, self.config, request)
        if self.emit is not None:
            await self.emit(outputs_of(result), receipt)
        return 200, receipt

    async def delete_identity(self, query: Mapping[str, str]) -> Reply:
        return await self._delete(query, "delete_identity")

    async def delete_profile(self, query: Mapping[str, str]) -> Reply:
        """Every identity of the profile holding the given one (CONTRACT 4.6)."""
        return await self._delete(query, "delete_profile")

    async def namespaces(self, query: Mapping[str, str]) -> Reply:
        """The identity configuration a client needs: namespaces, strongest first."""
        namespaces = sorted(self.config.namespaces.values(), key=lambda n: n.priority)
        return 200, {
            "namespaces": [
                {
                    "name": n.name,
                    "kind": n.kind,
                    "priority": n.priority,
                    "unique": n.unique,
                    # The check a bad_format detail names, cut short (null: none, or
                    # e164's).
                    "format": None if n.format is None else n.format.pattern,
                }
                for n in namespaces
            ],
            "max_graph_size": self.config.max_graph_size,
        }

    async def overview(self, query: Mapping[str, str]) -> Reply:
        counts = await self.store.counts()
        return 200, {
            "profiles": sum(counts.graph_sizes.values()),
            "identities": {
                "total": sum(counts.identities.values()),
                "by_namespace": counts.identities,
            },
            "graph_sizes": {str(size): n for size, n in counts.graph_sizes.items()},
            "quarantined": counts.quarantined,
            "deadletters": {
                "total": sum(counts.deadletters.values()),
                "by_reason": counts.deadletters,
            },
            "counted_since": None if counts.since_ms is None else iso_ms(counts.since_ms),
            "complete": not counts.partial,
        }

    async def quarantined(self, query: Mapping[str, str]) -> Reply:
        keys = await self.store.quarantined()
        return 200, {"identities": [_identity_ref(Identity.from_key(k)) for k in keys]}

    async def release(self, query: Mapping[str, str]) -> Reply:
        """Lift a quarantine; its change goes to the graph-changes topic like any other."""
        identity = self._identity(query)
        released, out = await release_quarantine(self.store, identity)
        if self.emit is not None:
            await self.emit(out, None)
        return 200, {**_identity_ref(identity), "released": released, "changes": out.changes}
