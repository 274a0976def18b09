"""Privacy requests from ``cdp.privacy-requests`` (CONTRACT 2), checked against
``schemas/privacy-request.schema.json``."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.identity.config import IdentityConfig
from pipeline.ingest.decode import decode_value
from pipeline.ingest.identities import normalise_identity
from pipeline.ingest.schema import SchemaCheck
from pipeline.model import Identity, Rejected

PRIVACY_SCHEMA = SchemaCheck(
    "privacy-request.schema.json",
    reasons={"request_id": "bad_request_id", "action": "bad_action"},
    expected={},
)


@dataclass(frozen=True)
class PrivacyRequest:
    """Delete one identity, or the whole profile (graph) that holds it."""

    request_id: str
    action: str  # "delete_identity" or "delete_profile"
    namespace: str
    id: str

    @property
    def identity(self) -> Identity:
        return Identity(self.namespace, self.id)


def given_fields(raw: bytes | None, max_bytes: int) -> dict[str, str]:
    """What a request that does not fit names, for the receipt saying why nothing was
    deleted: ``request_id`` if it is a usable one, and ``action``, ``namespace`` and ``id``
    as given; nothing if the value does not decode."""
    try:
        doc = decode_value(raw, max_bytes)
    except Rejected:
        return {}
    request_id, bounds = doc.get("request_id"), PRIVACY_SCHEMA.schema["properties"]["request_id"]
    if not isinstance(request_id, str):
        return {}
    if not bounds["minLength"] <= len(request_id) <= bounds["maxLength"]:
        return {}
    given = {
        name: str(doc[name])
        for name in ("action", "namespace", "id")
        if isinstance(doc.get(name), str | int) and not isinstance(doc[name], bool)
    }
    return {"request_id": request_id, **given}


def parse_privacy_request(
    raw: bytes | None, max_bytes: int, *, config: IdentityConfig | None = None
) -> PrivacyRequest:
    """The request a record value holds, or ``Rejected``.

    With ``config`` the identity is normalised as an event's would be (so the request
    finds what events stored) and an unusable one is rejected with the reason it would
    have been dropped for; without it the id is taken as given.
    """
    doc = decode_value(raw, max_bytes)
    PRIVACY_SCHEMA.validate(doc)
    if config is None:
        identity = Identity(doc["namespace"], str(doc["id"]))
    else:
        identity = normalise_identity(config, doc["namespace"], doc["id"])
    return PrivacyRequest(doc["request_id"], doc["action"], identity.namespace, identity.id)
