"""Assemble the profile document (CONTRACT 5) from the fragments of a graph."""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import msgpack

from pipeline.identity.config import UNKNOWN_PRIORITY, IdentityConfig
from pipeline.identity.replies import RawProfile
from pipeline.ingest import unflatten_attributes
from pipeline.kept import Kept
from pipeline.model import KEY_SEP
from pipeline.profile.merge import winners
from pipeline.timefmt import iso_ms

# Each publication of a profile decodes its timeline again, and only the newest summary
# is new: decoded summaries are kept by their bytes (~0.3 us a hit against ~0.8 to
# decode; 32,768 at most, ~18 MB of bench summaries). Only maps of
# strings are kept, so the shallow copy each document gets is a whole one.
_SUMMARIES: Kept[bytes, dict[str, Any]] = Kept(32_768)


def _summary(blob: bytes) -> Any:
    try:
        return dict(_SUMMARIES[blob])
    except KeyError:
        pass
    value = msgpack.unpackb(blob, raw=False)
    if isinstance(value, dict) and all(type(item) is str for item in value.values()):
        return dict(_SUMMARIES.keep(blob, value))
    return value


def _identities(raw: RawProfile, config: IdentityConfig) -> list[dict[str, Any]]:
    """Members by namespace priority, then key (one key split per member: this runs
    on every lookup)."""
    rows = []
    for m in raw.members:
        namespace, _, value = m.key.partition(KEY_SEP)
        ns = config.namespaces.get(namespace)
        rows.append((ns.priority if ns else UNKNOWN_PRIORITY, m.key, namespace, value, m))
    rows.sort(key=itemgetter(0, 1))
    return [
        {
            "namespace": namespace,
            "id": value,
            "first_seen": iso_ms(m.first_seen_ms),
            "last_seen": iso_ms(m.last_seen_ms),
        }
        for _, _, namespace, value, m in rows
    ]


def _without_nulls(node: dict[str, Any]) -> dict[str, Any]:
    """``node`` less its null leaves, and less the objects left empty by that alone
    (an object a producer cleared, ``{}``, stays)."""
    kept: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            value = _without_nulls(value)
            if not value:
                continue
        if value is not None:
            kept[key] = value
    return kept


def merged_attributes(
    raw: RawProfile, policy: str, precedence: Sequence[str] = ()
) -> dict[str, Any]:
    """The attribute view under ``policy``. A winning null removes its path, and what a
    weaker winner had below it (``a`` = null after ``a.b`` = 1 removes ``a``)."""
    flat = {
        c.path: msgpack.unpackb(c.value, raw=False)
        for c in winners(raw.attributes, policy, precedence)
    }
    return _without_nulls(unflatten_attributes(flat))


def assemble(
    raw: RawProfile,
    config: IdentityConfig,
    *,
    policy: str = "timestamp",
    precedence: Sequence[str] = (),
    recent_limit: int = 20,
) -> dict[str, Any]:
    """The profile document of ``raw`` (schemas/profile.schema.json)."""
    recent = sorted(raw.recent, key=itemgetter(0), reverse=True)  # newest first
    return {
        "profile_id": raw.profile_id,
        "identities": _identities(raw, config),
        "attributes": merged_attributes(raw, policy, precedence),
        "events": {
            "count": raw.count,
            "by_type": dict(sorted(raw.counts_by_type.items())),
            "by_channel": dict(sorted(raw.counts_by_channel.items())),
            "recent": [_summary(blob) for _, blob in recent[:recent_limit]],
        },
        "updated_at": iso_ms(raw.updated_at_ms),
        "version": raw.version,
    }
