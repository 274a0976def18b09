"""Pure-Python reference model of the identity rules (CONTRACT 4): the executable spec.

pipeline/identity/lua/*.lua implement exactly these steps; the property tests feed both
the same operations and compare the whole state. Keys order by code point (= UTF-8 byte
order, which the Lua side uses); profile ids compare as fixed-width strings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from pipeline.identity.arguments import StitchEvent
from pipeline.identity.config import UNKNOWN_PRIORITY, IdentityConfig

KIND_RANK = {"cookie": 0, "device": 0, "partner": 1, "person": 2}  # rule 4.3's tiers
UNKNOWN = {"kind": "partner", "priority": UNKNOWN_PRIORITY, "unique": False, "follower": False}
SHARED_DEVICE = "4.2 shared device"
SIZE_LIMIT = "4.3 graph size limit"
Link = tuple[str, str]


@dataclass
class Graph:
    version: int
    members: dict[str, list[int]]  # key -> [first_seen, last_seen]
    links: dict[Link, list[Any]]  # (a, b), a < b -> [first, last, seq, event_id, topic, part, off]


@dataclass
class Fragment:
    attributes: dict[tuple[str, str], tuple[bytes, int, int]] = field(default_factory=dict)
    recent: dict[bytes, int] = field(default_factory=dict)  # summary -> ts, like a sorted set
    counts: dict[str, int] = field(default_factory=dict)  # "n", "t:<type>", "c:<channel>"


@dataclass
class Result:
    outcomes: list[str] = field(default_factory=list)
    dirty: set[str] = field(default_factory=set)
    ceased: set[str] = field(default_factory=set)
    changes: list[dict[str, Any]] = field(default_factory=list)
    already: list[str] = field(default_factory=list)  # deletes: targets suppressed before


@dataclass
class Pool:
    """The graphs one step works on, pooled: old ids, members, links."""

    old: dict[str, Graph]
    members: dict[str, list[int]]
    links: dict[Link, list[Any]]


def suppression_hash(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()


class Model:
    def __init__(self, config: IdentityConfig, recent_limit: int = 20) -> None:
        spec = config.for_redis()
        self.ns: dict[str, dict[str, Any]] = spec["namespaces"]
        self.max_size: int = spec["max_graph_size"]
        self.q_max: int = spec["quarantine_max"]
        self.q_window: int = spec["quarantine_window_ms"]
        self.recent_limit = recent_limit
        self.index: dict[str, str] = {}
        self.graphs: dict[str, Graph] = {}
        self.fragments: dict[str, Fragment] = {}
        self.seen: dict[str, list[dict[str, Any]]] = {}
        self.suppressed: set[str] = set()
        self.quarantined: set[str] = set()
        self.moves: dict[str, list[int]] = {}
        self.pid_counter = 0
        self.seq = 0
        # (privacy request id, mode, targets) -> its first answer: only the same request
        # is a redelivery, not another one under a reused id
        self.requests: dict[tuple[str, str, tuple[str, ...]], Result] = {}

    def info(self, key: str) -> dict[str, Any]:
        return self.ns.get(key.partition(":")[0], UNKNOWN)

    def rank(self, key: str) -> tuple[int, str]:
        return self.info(key)["priority"], key

    # -- operations ------------------------------------------------------------------------
    def stitch(self, events: list[StitchEvent]) -> Result:
        res = Result()
        for e in events:
            self._event(e, res)
        res.dirty -= res.ceased
        return res

    def delete_identities(self, keys: list[str], request_id: str) -> Result:
        return self._delete(keys, (request_id, "identities", tuple(keys)))

    def delete_profile_of(self, key: str, request_id: str) -> Result:
        """Every identity of the graph holding ``key``; ``key`` alone when it has none."""
        graph = self.graphs.get(self.index.get(key, ""))
        return self._delete(
            sorted(graph.members) if graph else [key], (request_id, "profile_of", (key,))
        )

    def _delete(self, keys: list[str], request: tuple[str, str, tuple[str, ...]]) -> Result:
        if request in self.requests:  # a redelivered request: same answer, no effect
            return self.requests[request]
        res, cause = Result(), {"request_id": request[0]}
        keys = list(dict.fromkeys(keys))
        res.already = [k for k in keys if suppression_hash(k) in self.suppressed]
        for k in keys:
            self.suppressed.add(suppression_hash(k))
            self.quarantined.discard(k)
            self.moves.pop(k, None)
            self.fragments.pop(k, None)
        present = [k for k in keys if k in self.index]
        pool = self._load({self.index[k] for k in present})
        changes = [
            self._change("identity_deleted", k, identity=k, **{"from": self.index[k]})
            for k in present
        ]
        for k in present:
            del self.index[k], pool.members[k]
        pool.links = {ln: v for ln, v in pool.links.items() if set(ln) <= pool.members.keys()}
        self._assign(pool, self._partition(pool, list(pool.members)), res, changes)
        self._finish(changes, res, cause, "4.6 privacy delete")
        res.dirty -= res.ceased
        res.outcomes = present
        self.requests[request] = res
        return res

    def release(self, key: str, request_id: str) -> Result:
        res = Result()
        if key in self.quarantined:
            self.quarantined.discard(key)
            self.moves.pop(key, None)
            changes = [self._change("identity_released", key, identity=key)]
            self._finish(changes, res, {"request_id": request_id}, "circuit breaker")
        return res

    # -- one event -------------------------------------------------------------------------
    def _event(self, e: StitchEvent, res: Result) -> None:
        if e.event_id in self.seen:
            res.outcomes.append("duplicate")
            res.changes += [c for c in self.seen[e.event_id] if not self._names_deleted(c)]
            res.dirty |= {self.index[k] for k in e.identities if k in self.index}
            return
        keys = [
            k for k in dict.fromkeys(e.identities) if suppression_hash(k) not in self.suppressed
        ]
        linkable = [k for k in keys if k not in self.quarantined]
        if not linkable:
            reason = "all_identities_quarantined" if keys else "all_identities_deleted"
            res.outcomes.append(f"rejected:{reason}")
            return
        res.outcomes.append("ok")
        primary = e.primary if e.primary in linkable else min(linkable, key=self.rank)
        self.seq += 1
        ts, changes = e.timestamp_ms, []
        cause = {
            "event_id": e.event_id,
            "topic": e.topic,
            "partition": e.partition,
            "offset": e.offset,
        }
        olds = {k: self.index.get(k) for k in linkable}
        pool = self._load({p for p in olds.values() if p})
        for k in linkable:  # 4.1: touch and link
            m = pool.members.setdefault(k, [ts, ts])
            m[0], m[1] = min(m[0], ts), max(m[1], ts)
        for a, b in combinations(sorted(linkable), 2):
            link = pool.links.get((a, b))
            if link is None:
                pool.links[(a, b)] = [ts, ts, self.seq, e.event_id, e.topic, e.partition, e.offset]
                changes.append(self._change("link_added", a, a=a, b=b, rule="4.1 link"))
            else:  # first and last seen: the earliest and latest time that asserted it
                link[0] = min(link[0], ts)
                if ts >= link[1]:
                    link[1], link[2] = ts, self.seq
        unique_conflict = self._conflict(list(pool.members))
        conflict = unique_conflict or self._bridges(linkable, olds)
        old_of = {k: p for p in pool.old for k in pool.old[p].members}
        parts = self._partition(pool, list(pool.members), changes if conflict else None)
        comps = [part for c in parts for part in self._fit(pool, c, changes)]
        self._assign(pool, comps, res, changes)
        self._store_fragment(e, primary)
        moved = sorted(
            k for k in old_of if conflict and self.index[k] != old_of[k] and self._counted(k)
        )
        rule = "4.2 unique-namespace rebuild" if unique_conflict else SHARED_DEVICE
        # _fit adds a part per detachment: a split it made is the size limit's.
        fitted = SIZE_LIMIT if len(comps) > len(parts) else "4.1 link"
        self._finish(changes, res, cause, rule if conflict else fitted)
        for k in [k for k in moved if self._count_move(k, ts)]:
            self._quarantine(k, res, cause)
        self.seen[e.event_id] = [c for c in res.changes if c["event"] is cause]

    def _counted(self, key: str) -> bool:
        """The breaker counts no device, cookie or follower: moving with the last login is
        their rule (4.2), shared-device rule on or off."""
        info = self.info(key)
        return not info["follower"] and info["kind"] not in ("device", "cookie")

    def _names_deleted(self, change: dict[str, Any]) -> bool:
        """Whether a recorded change names an identity deleted since (rule 4.6)."""
        named = (change.get(field) for field in ("a", "b", "identity"))
        return any(suppression_hash(k) in self.suppressed for k in named if k is not None)

    def _store_fragment(self, e: StitchEvent, primary: str) -> None:
        frag = self.fragments.setdefault(primary, Fragment())
        for path, value in e.attributes.items():
            cur = frag.attributes.get((path, e.channel))
            if cur is None or (e.timestamp_ms, self.seq) > (cur[1], cur[2]):
                frag.attributes[(path, e.channel)] = (value, e.timestamp_ms, self.seq)
        frag.recent[e.summary] = e.timestamp_ms
        newest = sorted(frag.recent.items(), key=lambda kv: (kv[1], kv[0]))[-self.recent_limit :]
        frag.recent = dict(newest)
        for name in ("n", f"t:{e.type}", f"c:{e.channel}"):
            frag.counts[name] = frag.counts.get(name, 0) + 1

    def _count_move(self, key: str, ts: int) -> bool:
        """Circuit breaker: True when ``key`` just exceeded its reassignments in the window."""
        times = [t for t in self.moves.get(key, []) if t > ts - self.q_window] + [ts]
        self.moves[key] = times
        return len(times) > self.q_max and key not in self.quarantined

    def _quarantine(self, key: str, res: Result, cause: dict[str, Any]) -> None:
        old = self.index[key]
        pool = self._load({old})
        pool.links = {ln: v for ln, v in pool.links.items() if key not in ln}
        changes = [self._change("identity_quarantined", key, identity=key, **{"from": old})]
        self._assign(pool, self._partition(pool, list(pool.members)), res, changes)
        self._finish(changes, res, cause, "circuit breaker")
        self.quarantined.add(key)
        self.moves.pop(key, None)

    # -- graph steps ---------------------------------------------------------------------
    def _load(self, pids: set[str]) -> Pool:
        pool = Pool({p: self.graphs[p] for p in sorted(pids)}, {}, {})
        for g in pool.old.values():
            pool.members.update({k: list(v) for k, v in g.members.items()})
            pool.links.update({ln: list(v) for ln, v in g.links.items()})
        return pool

    def _bridges(self, linkable: list[str], olds: dict[str, str | None]) -> bool:
        """Rule 4.2 shared devices: the event would join two parts that each hold a person
        (a non-follower identity) through followers only. The parts: the event's own
        persons (linked to each other directly) and every graph it touches that holds a
        person but none of the event's persons."""
        persons = [k for k in linkable if not self.info(k)["follower"]]
        reached = {olds[k] for k in persons}
        apart = {
            p for p in olds.values() if p is not None and p not in reached and self._holds_person(p)
        }
        return len(apart) + (1 if persons else 0) > 1

    def _holds_person(self, pid: str) -> bool:
        return any(not self.info(k)["follower"] for k in self.graphs[pid].members)

    def _conflict(self, keys: list[str]) -> bool:
        uniq = [k for k in keys if self.info(k)["unique"]]
        return len({k.partition(":")[0] for k in uniq}) < len(uniq)

    def _partition(
        self, pool: Pool, keys: list[str], rebuild: list[dict[str, Any]] | None = None
    ) -> list[list[str]]:
        """Union-find over the links among ``keys``; components sorted by best member.

        With ``rebuild`` (a change list), links go strongest first and a link that would
        join two values of a unique namespace is deleted (rule 4.2), as is a link to a
        follower that would join two parts that each hold a person (shared device)."""
        parent = {k: k for k in keys}
        uniq = {k: {k.partition(":")[0]: k} if self.info(k)["unique"] else {} for k in keys}
        person = {k: not self.info(k)["follower"] for k in keys}

        def find(k: str) -> str:
            while parent[k] != k:
                k = parent[k]
            return k

        def order(item: tuple[Link, list[Any]]) -> tuple[int, int, int, str, str]:
            (a, b), ev = item
            return max(self.rank(a)[0], self.rank(b)[0]), -ev[1], -ev[2], a, b

        links = [(ln, v) for ln, v in pool.links.items() if ln[0] in parent and ln[1] in parent]
        for (a, b), _ev in sorted(links, key=order) if rebuild is not None else links:
            ra, rb = find(a), find(b)
            if ra == rb:
                continue
            if rebuild is not None and any(uniq[rb].get(n, v) != v for n, v in uniq[ra].items()):
                del pool.links[(a, b)]
                rebuild.append(self._change("link_removed", a, a=a, b=b))
                continue
            follows = self.info(a)["follower"] or self.info(b)["follower"]
            if rebuild is not None and follows and person[ra] and person[rb]:
                del pool.links[(a, b)]
                rebuild.append(self._change("link_removed", a, a=a, b=b, rule=SHARED_DEVICE))
                continue
            parent[rb] = ra
            uniq[ra].update(uniq[rb])
            person[ra] = person[ra] or person[rb]
        groups: dict[str, list[str]] = {}
        for k in keys:
            groups.setdefault(find(k), []).append(k)
        return sorted((sorted(g) for g in groups.values()), key=lambda g: min(map(self.rank, g)))

    def _fit(self, pool: Pool, comp: list[str], changes: list[dict[str, Any]]) -> list[list[str]]:
        """Rule 4.3: detach cookies and devices first, the least recently seen first, until
        it fits."""
        if len(comp) <= self.max_size:
            return [comp]
        info = self.info
        victim = min(comp, key=lambda k: (KIND_RANK[info(k)["kind"]], pool.members[k][1], k))
        pool.links = {ln: v for ln, v in pool.links.items() if victim not in ln}
        others = [k for k in comp if k != victim]
        # "from": the profile the highest-priority identity left behind ends in (_finish).
        anchor = min(others, key=self.rank)
        changes.append(
            self._change(
                "identity_evicted", victim, identity=victim, rule=SIZE_LIMIT, anchor=anchor
            )
        )
        rest = self._partition(pool, others)
        return [[victim]] + [part for c in rest for part in self._fit(pool, c, changes)]

    def _assign(
        self, pool: Pool, comps: list[list[str]], res: Result, changes: list[dict[str, Any]]
    ) -> None:
        """Rule 4.4: each old id follows its anchor; the oldest id wins; the rest cease."""
        comps = sorted(comps, key=lambda c: min(map(self.rank, c)))
        comp_of = {k: i for i, c in enumerate(comps) for k in c}
        received: list[list[str]] = [[] for _ in comps]
        for pid, g in pool.old.items():
            alive = [k for k in g.members if k in comp_of]
            if alive:
                received[comp_of[min(alive, key=self.rank)]].append(pid)
            else:
                self._cease(pid, res)
        for i, comp in enumerate(comps):
            ids = received[i]
            if ids:
                pid = ids[0]
                for gone in ids[1:]:
                    self._cease(gone, res)
                if ids[1:]:
                    changes.append({"type": "graphs_merged", "profile_id": pid, "from": ids[1:]})
            else:
                self.pid_counter += 1
                pid = f"p_{self.pid_counter:010x}"
            version = max((pool.old[p].version for p in ids), default=0) + 1
            links = {ln: v for ln, v in pool.links.items() if comp_of.get(ln[0]) == i}
            self.graphs[pid] = Graph(version, {k: pool.members[k] for k in comp}, links)
            self.index.update(dict.fromkeys(comp, pid))
            res.dirty.add(pid)
        for pid, g in pool.old.items():
            into = sorted({self.index[k] for k in g.members if k in comp_of})
            if len(into) > 1:
                changes.append({"type": "graph_split", "profile_id": pid, "into": into})

    def _cease(self, pid: str, res: Result) -> None:
        del self.graphs[pid]
        res.ceased.add(pid)

    @staticmethod
    def _change(kind: str, subject: str, **details: Any) -> dict[str, Any]:
        return {"type": kind, "subject": subject, **details}

    def _finish(
        self, changes: list[dict[str, Any]], res: Result, cause: dict[str, Any], rule: str
    ) -> None:
        """Resolve each change's profile id (after regrouping) and stamp cause and rule."""
        for c in changes:
            subject = c.pop("subject", None)
            if subject is not None:
                c["profile_id"] = self.index.get(subject, c.get("from"))
            if "anchor" in c:
                c["from"] = self.index[c.pop("anchor")]
            c.setdefault("rule", rule)
            c["event"] = cause
        res.changes += changes
