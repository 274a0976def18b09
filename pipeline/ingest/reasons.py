"""Every dead-letter reason code, with what it means.

A code is a Prometheus label and the ``cdp-reason`` dead-letter header, so the set is
closed and short; the human sentence travels separately as ``Rejected.detail``.
"""

from __future__ import annotations

# Codes that send a record to the dead-letter topic (``Rejected.reason`` at ingest, the
# stitch stage's last three); the meaning is the dead letter's detail where the stage has
# no more precise sentence.
REJECT_REASONS: dict[str, str] = {
    "null_value": "the record has no value (null)",
    "oversized": "the value is larger than CDP_MAX_EVENT_BYTES",
    "not_an_object": "the value is neither a JSON object nor a msgpack map",
    "undecodable": "the value looks like JSON or msgpack but does not decode "
    "(bad syntax, bad UTF-8 or an unpaired \\ud800-\\udfff escape, trailing bytes)",
    "too_deep": "containers nested more than 32 levels",
    "bad_key": "a map key is not a string",
    "unsupported_type": (
        "a value the profile cannot hold (msgpack bytes/ext, NaN, Infinity, an integer "
        "beyond 64 bits)"
    ),
    "missing_field": "a required field is absent",
    "wrong_type": "a field has the wrong JSON type",
    "bad_event_id": "event_id is empty or longer than 256 characters",
    "bad_timestamp": "timestamp is not ISO-8601 with a zone or epoch ms, or is before "
    "2000 or more than a day in the future",
    "bad_kind": "kind is neither record nor experience",
    "bad_channel": "channel does not match ^[a-z0-9_-]+$",
    "too_many_identities": "more than 20 identities",
    "no_valid_identity": "no identity is left once the invalid ones are dropped",
    "multiple_primary": "more than one identity is flagged primary",
    "conflicting_unique_identities": "two different values of one unique namespace",
    "bad_request_id": "request_id is empty or longer than 256 characters",
    "bad_action": "action is neither delete_identity nor delete_profile",
    "invalid_envelope": "any other schema violation (the detail says which)",
    # A privacy request names exactly one identity, so these reject it rather than drop it.
    "unknown_namespace": "the namespace is not configured",
    "blocked_value": "the value is blocked (null, undefined, empty, junk)",
    "bad_format": "the value fails its namespace's format check",
    "all_identities_deleted": "every identity of the event was deleted by a privacy "
    "request; storing it would bring a deleted person back",
    "all_identities_quarantined": "every identity of the event is quarantined as a junk "
    "identifier (see `cdp quarantine list`); release it to accept such events",
    "stitch_error": "Redis refused the event (a bug or data it cannot take); the rest of "
    "the batch went through",
}

# Codes of identities left out of an event that goes on (``DroppedIdentity.reason``).
DROP_REASONS: dict[str, str] = {
    "unknown_namespace": REJECT_REASONS["unknown_namespace"],
    "blocked_value": REJECT_REASONS["blocked_value"],
    "bad_format": REJECT_REASONS["bad_format"],
}
