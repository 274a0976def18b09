"""parse_privacy_request: the cdp.privacy-requests value (CONTRACT 2)."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest

from pipeline.identity.config import IdentityConfig
from pipeline.ingest import REJECT_REASONS, PrivacyRequest, parse_privacy_request
from pipeline.model import Identity, Rejected

REQUEST = {
    "request_id": "r-1",
    "action": "delete_identity",
    "namespace": "email",
    "id": " Evan@Example.com",
}


def reject(doc: Any, config: IdentityConfig | None = None) -> Rejected:
    raw = json.dumps(doc).encode() if isinstance(doc, dict) else doc
    with pytest.raises(Rejected) as caught:
        parse_privacy_request(raw, 4096, config=config)
    assert caught.value.reason in REJECT_REASONS
    return caught.value


@pytest.mark.parametrize("encode", [lambda d: json.dumps(d).encode(), msgpack.packb])
def test_normalised_like_an_event(config: IdentityConfig, encode: Any) -> None:
    request = parse_privacy_request(encode(REQUEST), 4096, config=config)
    assert request == PrivacyRequest("r-1", "delete_identity", "email", "evan@example.com")
    assert request.identity == Identity("email", "evan@example.com")


def test_normalised_to_nfc_like_an_event(config: IdentityConfig) -> None:
    doc = {**REQUEST, "id": "Jose\u0301@Example.com"}  # decomposed, as macOS may send it
    request = parse_privacy_request(json.dumps(doc).encode(), 4096, config=config)
    assert request.identity == Identity("email", "jos\u00e9@example.com")


def test_delete_profile_by_identity(config: IdentityConfig) -> None:
    doc = {**REQUEST, "action": "delete_profile", "namespace": "crm_id", "id": 31260}
    request = parse_privacy_request(json.dumps(doc).encode(), 4096, config=config)
    assert (request.action, request.identity) == ("delete_profile", Identity("crm_id", "31260"))


def test_without_config_the_id_is_taken_as_given() -> None:
    request = parse_privacy_request(json.dumps({**REQUEST, "id": 7}).encode(), 4096)
    assert request.identity == Identity("email", "7")


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (None, "null_value"),
        (b"[]", "not_an_object"),
        (b"{oops", "undecodable"),
        ({**REQUEST, "request_id": ""}, "bad_request_id"),
        ({**REQUEST, "action": "forget"}, "bad_action"),
        ({**REQUEST, "namespace": 3}, "wrong_type"),
        ({k: v for k, v in REQUEST.items() if k != "id"}, "missing_field"),
        ({**REQUEST, "namespace": "twitter"}, "unknown_namespace"),
        ({**REQUEST, "id": "null"}, "blocked_value"),
        ({**REQUEST, "id": "no-at-sign"}, "bad_format"),
    ],
)
def test_rejections(config: IdentityConfig, doc: Any, reason: str) -> None:
    assert reject(doc, config).reason == reason


def test_oversized() -> None:
    with pytest.raises(Rejected) as caught:
        parse_privacy_request(json.dumps(REQUEST).encode(), 10)
    assert caught.value.reason == "oversized"
