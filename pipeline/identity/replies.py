"""The scripts' replies as Python values: graphs, profiles and their fragments, the
outcomes of a stitch batch or a delete, the overview's counts.

The scripts answer in msgpack (strings as bytes); the decoders here are the one place
that knows each reply's layout, next to the script that writes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack


@dataclass
class StitchResult:
    outcomes: list[str]  # per event: "ok" | "duplicate" | "rejected:<reason>"
    dirty: set[str]  # profiles whose document must be (re)published
    ceased: set[str]  # profiles that no longer exist: tombstone them
    changes: list[dict[str, Any]]  # for cdp.graph-changes, keyed by change["profile_id"]
    graph_sizes: list[int]  # sizes of the graphs the batch touched
    call_seq: int = 0  # order in which Redis applied this call among all stitch calls


@dataclass
class ChangeResult:
    dirty: set[str]
    ceased: set[str]
    changes: list[dict[str, Any]]


@dataclass
class DeleteResult:
    deleted: list[str]  # identity keys that existed
    dirty: set[str]
    ceased: set[str]
    changes: list[dict[str, Any]]
    # When Redis carried it out (epoch ms), the first time for a redelivered request; None
    # in an answer an earlier version stored.
    done_ms: int | None = None
    # Targets suppressed before the request (deleted by an earlier one); empty in an
    # answer an earlier version stored.
    already: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Member:
    key: str
    first_seen_ms: int
    last_seen_ms: int


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    first_seen_ms: int
    last_seen_ms: int
    seq: int
    event_id: str
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class AttributeValue:
    path: str
    channel: str
    value: bytes  # msgpack-encoded
    timestamp_ms: int
    seq: int
    identity: str  # the fragment it comes from


@dataclass
class RawGraph:
    profile_id: str
    members: list[Member]
    links: list[Link]
    version: int = 0
    updated_at_ms: int = 0


@dataclass(frozen=True)
class Fragment:
    """One member's share of a profile as read: what a publisher keeps between reads."""

    count_text: bytes  # its '#n' as stored (b"" for none): read.lua's proof of no change
    attributes: list[AttributeValue]
    count: int
    by_type: dict[str, int]
    by_channel: dict[str, int]
    recent: list[tuple[int, bytes]]  # its whole timeline, newest first

    def timeline_min(self) -> str:
        """ZRANGEBYSCORE's min just above its newest entry (read.lua's kept min)."""
        return f"({self.recent[0][0]}" if self.recent else "-inf"


@dataclass
class RawProfile:
    profile_id: str
    version: int
    updated_at_ms: int
    members: list[Member]
    attributes: list[AttributeValue]
    recent: list[tuple[int, bytes]]  # (event ts, summary), newest first, whole graph
    count: int
    counts_by_type: dict[str, int]
    counts_by_channel: dict[str, int]
    fragments: dict[str, Fragment] = field(default_factory=dict)  # by identity key


@dataclass(frozen=True)
class Counts:
    """The overview's counters (overview.lua): kept by every graph change, read in O(1)."""

    identities: dict[str, int]  # by namespace
    graph_sizes: dict[int, int]  # identities per graph -> graphs
    quarantined: int
    deadletters: dict[str, int]  # by reason
    since_ms: int | None  # when counting began (None: nothing stitched yet)
    partial: bool  # graphs existed before counting began: they are not counted


def as_text(value: Any) -> Any:
    """Scripts return strings as bytes (msgpack raw); decode the textual parts."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [as_text(v) for v in value]
    if isinstance(value, dict):
        return {as_text(k): as_text(v) for k, v in value.items()}
    return value


def _pairs(flat: list[Any]) -> Iterator[tuple[Any, Any]]:
    items = iter(flat)
    return zip(items, items, strict=True)


def _members(flat: list[Any]) -> list[Member]:
    items = iter(flat)
    return [Member(k.decode(), f, last) for k, f, last in zip(items, items, items, strict=True)]


def _evidence(text: bytes) -> tuple[str, str, int, int]:
    """A stored link evidence (lua/includes/blob.lua): from the end, as the event id may
    hold anything."""
    event_id, topic, partition, offset = text.rsplit(b"\0", 3)
    return event_id.decode(), topic.decode(), int(partition), int(offset)


def raw_graph(pid: str, raw: list[Any]) -> RawGraph:
    # read.lua's reply: links and their evidence as stored (lua/includes/blob.lua).
    version, updated, flat_members, flat_links, _, _, evidence = raw
    members = _members(flat_members)
    keys = [m.key for m in members]
    causes = [_evidence(text) for text in evidence]
    links = [
        Link(keys[a - 1], keys[b - 1], f, last, seq, *causes[cause - 1])
        for a, b, f, last, seq, cause in zip(*[flat_links[i::6] for i in range(6)], strict=True)
    ]
    links.sort(key=lambda ln: (ln.a, ln.b))
    return RawGraph(pid, members, links, version, updated)


def _fragment(identity: str, fields: list[bytes], recent: list[tuple[int, bytes]]) -> Fragment:
    # Runs for every fragment read: one pass over its fields.
    attributes: list[AttributeValue] = []
    by_type: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    tallies = {b"#t:": by_type, b"#c:": by_channel}
    count_text = b""
    unpack = msgpack.unpackb
    for name, stored in _pairs(fields):
        if name[:1] != b"#":
            channel, _, path = name.decode().partition("|")
            value, ts, seq = unpack(stored, raw=True)
            attributes.append(AttributeValue(path, channel, value, ts, seq, identity))
        elif name == b"#n":  # counts (includes/base.lua: {cdp}:a:<key>): all, by type, by channel
            count_text = stored
        elif (counts := tallies.get(name[:3])) is not None:
            counts[name[3:].decode()] = int(stored)
    return Fragment(count_text, attributes, int(count_text or 0), by_type, by_channel, recent)


def _timeline(flat: list[bytes]) -> list[tuple[int, bytes]]:
    return [(int(ts), summary) for summary, ts in _pairs(flat)]


def _gained(newer: list[tuple[int, bytes]], held: Fragment, limit: int) -> list[tuple[int, bytes]]:
    """A kept timeline plus the entries read.lua found above it: what the zset holds (an
    entry added again moved up; a trim drops the oldest first, never one of ``newer``)."""
    moved = {summary for _, summary in newer}
    timeline = newer + [entry for entry in held.recent if entry[1] not in moved]
    timeline.sort(reverse=True)
    return timeline[:limit]


def _fragments(
    entries: list[list[Any]], kept: Mapping[str, Fragment], limit: int
) -> dict[str, Fragment]:
    fragments = {}
    for key, *read in entries:
        identity = key.decode()
        if not read:  # unchanged since kept
            fragments[identity] = kept[identity]
            continue
        recent = _timeline(read[1])
        if len(read) == 3:  # only newer entries
            recent = _gained(recent, kept[identity], limit)
        fragments[identity] = _fragment(identity, read[0], recent)
    return fragments


def raw_profile(
    pid: str, raw: list[Any], recent_limit: int, kept: Mapping[str, Fragment]
) -> RawProfile:
    # Runs for every publication, no graph links (a document shows none; the script sends
    # none with fragments).
    fragments = _fragments(raw[4], kept, recent_limit)
    attributes: list[AttributeValue] = []
    recent: list[tuple[int, bytes]] = []
    by_type: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    count = 0
    for f in fragments.values():
        attributes += f.attributes
        recent += f.recent
        count += f.count
        for total, part in ((by_type, f.by_type), (by_channel, f.by_channel)):
            for name, n in part.items():
                total[name] = total.get(name, 0) + n
    recent.sort(reverse=True)
    return RawProfile(
        pid,
        raw[0],
        raw[1],
        _members(raw[2]),
        attributes,
        recent[:recent_limit],
        count,
        by_type,  # sorted where shown (assemble)
        by_channel,
        fragments,
    )


def stitch_result(reply: list[Any]) -> StitchResult:
    """stitch.lua's reply, decoded as text (it holds no binary values)."""
    call_seq, outcomes, dirty, ceased, changes, sizes = reply
    return StitchResult(outcomes, set(dirty), set(ceased), changes, sizes, call_seq)


def delete_result(reply: list[Any]) -> DeleteResult:
    # An answer stored by an earlier version lacks the later fields.
    deleted, dirty, ceased, changes, *later = reply
    return DeleteResult(
        as_text(deleted),
        set(as_text(dirty)),
        set(as_text(ceased)),
        as_text(changes),
        later[0] if later else None,
        as_text(later[1]) if len(later) > 1 else [],
    )


def counts(reply: list[Any]) -> Counts:
    """overview.lua's reply, decoded as text."""
    stats, quarantined, deadletters = reply
    fields = dict(_pairs(stats))

    def counted(prefix: str) -> dict[str, int]:
        # A field whose count went back to 0 stays in the hash: left out here.
        return {k[len(prefix) :]: int(n) for k, n in fields.items() if k.startswith(prefix)}

    sizes = {int(size): n for size, n in counted("size:").items() if n}
    return Counts(
        {ns: n for ns, n in sorted(counted("ns:").items()) if n},
        dict(sorted(sizes.items())),
        int(quarantined),
        dict(sorted((reason, int(n)) for reason, n in _pairs(deadletters))),
        int(fields["since"]) if "since" in fields else None,
        fields.get("partial") == "1",
    )
