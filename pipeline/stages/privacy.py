"""Privacy deletes (CONTRACT 4.6): one identity, or every identity of a profile."""

from __future__ import annotations

import time
from typing import Any

from pipeline.identity.commands import DeleteResult, GraphStore
from pipeline.identity.config import IdentityConfig
from pipeline.ingest import normalise_identity
from pipeline.ingest.privacy import PrivacyRequest
from pipeline.model import Rejected
from pipeline.timefmt import iso_ms


async def execute(
    store: GraphStore, config: IdentityConfig, request: PrivacyRequest
) -> tuple[dict[str, Any], DeleteResult | None]:
    """Carry out ``request``; the receipt says what was deleted and when, or why not."""
    received_ms = int(time.time() * 1000)
    receipt: dict[str, Any] = {
        "request_id": request.request_id,
        "action": request.action,
        "namespace": request.namespace,
        "id": request.id,
        "received_at": iso_ms(received_ms),
    }
    try:
        identity = normalise_identity(config, request.namespace, request.id)
    except Rejected as rejected:
        return {**receipt, "status": "rejected", "reason": rejected.detail}, None
    profile_id = await store.lookup(identity.key)
    if request.action == "delete_profile" and profile_id is not None:
        result = await store.delete_profile(profile_id, request.request_id)
    else:
        # An identity not (yet) in the graph is still suppressed, so that an event
        # still in flight cannot bring it in after the request.
        result = await store.delete_identities([identity.key], request.request_id)
    done = {"completed_at": iso_ms(int(time.time() * 1000))}
    if not result.deleted:
        return {
            **receipt,
            **done,
            "status": "not_found",
            "reason": "no such identity in the graph",
        }, result
    return {
        **receipt,
        **done,
        "status": "deleted",
        "deleted_identities": sorted(result.deleted),
        "affected_profile_ids": sorted(result.dirty),
        "ceased_profile_ids": sorted(result.ceased),
    }, result
