"""Assemble the profile document (CONTRACT 5) from the fragments of a graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack

from pipeline.identity.commands import RawProfile
from pipeline.identity.config import IdentityConfig
from pipeline.ingest import unflatten_attributes
from pipeline.model import Identity
from pipeline.profile.merge import winners
from pipeline.timefmt import iso_ms


def _identities(raw: RawProfile, config: IdentityConfig) -> list[dict[str, Any]]:
    def order(member_key: str) -> tuple[int, str]:
        ident = Identity.from_key(member_key)
        ns = config.namespaces.get(ident.namespace)
        return (ns.priority if ns else 1 << 30, member_key)

    return [
        {
            "namespace": Identity.from_key(m.key).namespace,
            "id": Identity.from_key(m.key).id,
            "first_seen": iso_ms(m.first_seen_ms),
            "last_seen": iso_ms(m.last_seen_ms),
        }
        for m in sorted(raw.members, key=lambda m: order(m.key))
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
    recent = sorted(raw.recent, key=lambda entry: entry[0], reverse=True)  # newest first
    return {
        "profile_id": raw.profile_id,
        "identities": _identities(raw, config),
        "attributes": merged_attributes(raw, policy, precedence),
        "events": {
            "count": raw.count,
            "by_type": dict(sorted(raw.counts_by_type.items())),
            "by_channel": dict(sorted(raw.counts_by_channel.items())),
            "recent": [msgpack.unpackb(blob, raw=False) for _, blob in recent[:recent_limit]],
        },
        "updated_at": iso_ms(raw.updated_at_ms),
        "version": raw.version,
    }
