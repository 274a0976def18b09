"""Privacy deletes (CONTRACT 4.6): one identity, or every identity of a profile; and
the other operator changes to the graph (a quarantine release)."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from pipeline import metrics
from pipeline.identity.commands import GraphStore
from pipeline.identity.config import IdentityConfig
from pipeline.identity.replies import ChangeResult, DeleteResult
from pipeline.ingest import normalise_identity, parse_privacy_request
from pipeline.ingest.privacy import PrivacyRequest, given_fields
from pipeline.model import Identity, Rejected
from pipeline.notes import UpdateNote
from pipeline.records import DeadLetter, Outputs, Record
from pipeline.retry import until_redis_answers
from pipeline.timefmt import iso_ms

Receipt = dict[str, Any]
NOT_FOUND = "no such identity in the graph"
# The identity was in the suppression set already: an earlier request deleted it, or
# found nothing of it and suppressed it all the same.
NOT_FOUND_AGAIN = "already deleted by an earlier privacy request"


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
    # An identity not (yet) in the graph is still suppressed, so that an event still in
    # flight cannot bring it in after the request.
    if request.action == "delete_profile":
        result = await store.delete_profile_of(identity.key, request.request_id)
    else:
        result = await store.delete_identities([identity.key], request.request_id)
    # When Redis deleted it: a redelivered request's receipt says when the first did.
    done = {"completed_at": iso_ms(result.done_ms or int(time.time() * 1000))}
    if not result.deleted:
        # Still not_found (requesters match on it); the reason tells a repeat apart.
        reason = NOT_FOUND_AGAIN if identity.key in result.already else NOT_FOUND
        return {**receipt, **done, "status": "not_found", "reason": reason}, result
    return {
        **receipt,
        **done,
        "status": "deleted",
        "deleted_identities": sorted(result.deleted),
        "affected_profile_ids": sorted(result.dirty),
        "ceased_profile_ids": sorted(result.ceased),
    }, result


def outputs_of(result: DeleteResult | ChangeResult | None) -> Outputs:
    """The graph changes of an operator's change, and the profiles to republish."""
    out = Outputs()
    if result is not None:
        note = UpdateNote.now()
        for profile_id in result.dirty | result.ceased:
            out.note(profile_id, note)
        out.changes.extend(result.changes)
    return out


async def handle_request(
    store: GraphStore, config: IdentityConfig, record: Record, max_bytes: int
) -> tuple[Outputs, Receipt | None]:
    """One record of the privacy-requests topic: what to send, and the receipt if any."""
    try:
        # Not normalised here: execute() does it once and answers a bad identity with a
        # receipt that says why nothing was deleted.
        request = parse_privacy_request(record.value, max_bytes)
    except Rejected as rejected:
        metrics.PRIVACY_REQUESTS.labels("unknown", "rejected").inc()
        dead = Outputs(deadletters=[DeadLetter(record, rejected.reason, rejected.detail)])
        return dead, _rejected_receipt(record.value, max_bytes, rejected)
    receipt, result = await until_redis_answers("privacy", partial(execute, store, config, request))
    metrics.PRIVACY_REQUESTS.labels(request.action, receipt["status"]).inc()
    return outputs_of(result), receipt


def _rejected_receipt(raw: bytes | None, max_bytes: int, rejected: Rejected) -> Receipt | None:
    """The receipt of a request that does not fit, if it names a usable request_id: its
    requester waits for one saying why nothing was deleted (CONTRACT 2)."""
    given = given_fields(raw, max_bytes)
    if "request_id" not in given:
        return None
    received = iso_ms(int(time.time() * 1000))
    return {**given, "received_at": received, "status": "rejected", "reason": rejected.detail}


async def release_quarantine(store: GraphStore, identity: Identity) -> tuple[bool, Outputs]:
    """Lift the circuit breaker's quarantine of ``identity``; whether it was quarantined,
    and its ``identity_released`` change to send."""
    released, result = await store.release(identity.key, f"release-{int(time.time() * 1000)}")
    return released, outputs_of(result)
