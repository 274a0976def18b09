"""Identity normalisation per namespace, drops, merges, unique conflicts, the primary."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.identity.config import IdentityConfig, Namespace
from pipeline.ingest import InvalidIdentity, normalise_identity
from pipeline.ingest.identities import MAX_ID_CHARS, normalise_value, resolve_identities
from pipeline.model import DroppedIdentity, Event, Identity, Rejected

Envelope = Callable[..., dict[str, Any]]
Parse = Callable[..., Event]


def ids(*pairs: tuple[str, Any], primary: int | None = None) -> list[dict[str, Any]]:
    """Identity entries; ``primary`` is the index of the one flagged primary."""
    return [
        {"namespace": ns, "id": value, **({"primary": True} if index == primary else {})}
        for index, (ns, value) in enumerate(pairs)
    ]


def drop_reason(config: IdentityConfig, namespace: str, value: Any) -> str:
    with pytest.raises(InvalidIdentity) as caught:
        normalise_identity(config, namespace, value)
    return caught.value.reason


@pytest.mark.parametrize(
    ("namespace", "raw", "normalised"),
    [
        ("phone", "(415) 555-2671", "+14155552671"),
        ("phone", "+1 415-555-2671", "+14155552671"),
        ("phone", "415.555.2671", "+14155552671"),
        ("phone", " +44 20 7946 0958 ", "+442079460958"),
        # Numbers of a well-formed length in ranges no carrier holds (the fictional 555
        # area code, Ofcom's drama range) are still phone numbers in E.164.
        ("phone", "+1 555 123 4567", "+15551234567"),
        ("phone", "(555) 123-4567", "+15551234567"),
        ("phone", "+44 7700 900123", "+447700900123"),
        ("email", "  Evan@Example.COM ", "evan@example.com"),
        # Internationalised top-level domains, as ASCII (punycode) or as Unicode.
        ("email", "Ivan@Example.XN--P1AI", "ivan@example.xn--p1ai"),
        ("email", "ivan@пример.рф", "ivan@пример.рф"),
        ("loyalty_id", " ab-12 ", "AB-12"),
        ("crm_id", " 31260XYZ\t", "31260XYZ"),
        ("crm_id", 31260, "31260"),  # integers become strings
        ("device_id", "AB:CD:EF:01", "ab:cd:ef:01"),
        ("ecid", "38652", "38652"),
    ],
)
def test_default_namespaces_normalise(
    config: IdentityConfig, namespace: str, raw: Any, normalised: str
) -> None:
    assert normalise_identity(config, namespace, raw) == Identity(namespace, normalised)


@pytest.mark.parametrize(
    ("namespace", "value"),
    [
        ("email", "test@test.com"),
        ("email", " TEST@test.com "),
        ("crm_id", "null"),
        ("crm_id", "NULL"),
        ("crm_id", "undefined"),
        ("crm_id", ""),
        ("crm_id", "   "),
        ("crm_id", 0),
        ("crm_id", -1),
        ("loyalty_id", "n/a"),
        ("phone", "null"),  # blocked, not a bad phone number
        ("phone", "(234) 567-8900"),  # +12345678900: valid, blocked once normalised
        ("phone", "123-456-7890"),  # the placeholder of every form; +1 123 is no area code
        ("device_id", "00000000-0000-0000-0000-000000000000"),
        ("ecid", "undefined"),
    ],
)
def test_blocked_values(config: IdentityConfig, namespace: str, value: Any) -> None:
    assert drop_reason(config, namespace, value) == "blocked_value"


@pytest.mark.parametrize(
    ("namespace", "value"),
    [
        ("email", "not-an-email"),
        ("email", "a@b@c.com"),
        ("email", "a@b.c1"),
        ("phone", "12"),
        ("phone", "call me"),
        ("phone", "+1 415 555 267"),  # too short to be valid
        ("phone", "555-0100"),  # a local number: no area code, so no E.164 form
        ("phone", "+1 415 555 26711"),  # too long
        ("crm_id", "has space"),
        ("loyalty_id", "ab_12"),
        ("device_id", "abc"),  # shorter than 4
        ("ecid", "x" * (MAX_ID_CHARS + 1)),
        ("ecid", True),
        ("ecid", 1.5),
    ],
)
def test_bad_format(config: IdentityConfig, namespace: str, value: Any) -> None:
    assert drop_reason(config, namespace, value) == "bad_format"


@pytest.mark.parametrize(
    "value",
    [
        "mailto:foo@bar.com",  # a link's target, copied with its scheme
        "MAILTO:Foo@Bar.com",
        '"Foo Bar" <foo@bar.com>',  # a display name, as a mail header writes it
        '"Foo"<foo@bar.com>',
        "<foo@bar.com>",
        "<foo@bar.com",
        "foo bar@bar.com",  # a space inside
        "foo@bar .com",
        "foo@@bar.com",  # two @
        "foo@bar@baz.com",
        "foo@bar.com.",  # a trailing dot: a DNS name's absolute form, no mail address
        "foo@bar..com",
        "foo@.bar.com",
        "foo@bar.com/x",
        "foo;bar@baz.com",
        "foo,bar@baz.com",
    ],
)
def test_an_email_with_more_than_the_address_is_bad_format(
    config: IdentityConfig, value: str
) -> None:
    """CONTRACT 4 normalises an email by trimming and lower-casing it, nothing more: a
    scheme, a display name or a second address is no part of the address, so the value
    fails the format check and is left out rather than guessed at."""
    assert drop_reason(config, "email", value) == "bad_format"


@pytest.mark.parametrize(
    "value",
    [
        "first.last+tag@example.com",
        "o'brien@example.ie",
        "a_b-c@sub.example.co.uk",
        "x@xn--p1ai.xn--p1ai",
    ],
)
def test_plain_addresses_still_pass_the_email_format(config: IdentityConfig, value: str) -> None:
    assert normalise_identity(config, "email", value) == Identity("email", value)


@pytest.mark.parametrize(
    ("namespace", "raw", "normalised"),
    [
        ("email", "\u200bEvan@Example.com", "evan@example.com"),  # a zero-width space
        ("email", "\ufeffevan@example.com \u200b", "evan@example.com"),  # a CSV's BOM
        ("email", "evan@example.com\u200e", "evan@example.com"),  # a left-to-right mark
        ("crm_id", "\u2060 31260XYZ\u00ad", "31260XYZ"),
    ],
)
def test_trim_takes_invisible_characters_off_the_ends(
    config: IdentityConfig, namespace: str, raw: str, normalised: str
) -> None:
    """Copied from a web page or a spreadsheet, a value can carry characters that show
    nothing: the same address with one was another identity, another profile."""
    assert normalise_identity(config, namespace, raw) == Identity(namespace, normalised)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("evan.example.com", "no '@'"),
        ("foo@@bar.com", "more than one '@'"),
        ("foo@bar@baz.com", "more than one '@'"),
        ("@bar.com", "nothing before '@'"),
        ("foo@", "nothing after '@'"),
        ("mailto:foo@bar.com", "a scheme ('mailto:')"),
        ('"Foo Bar" <foo@bar.com>', "a display name or angle brackets"),
        ("<foo@bar.com>", "a display name or angle brackets"),
        ("foo bar@bar.com", "a space"),
        ("evan\u200b@example.com", "an invisible character"),
        ("foo@bar.com.", "the domain ends with a dot"),
        ("foo@localhost", "no dot in the domain"),
        ("foo@bar..com", "an empty label in the domain"),
        ("foo;bar@baz.com", "';' in it"),
    ],
)
def test_a_bad_email_says_what_is_wrong(config: IdentityConfig, value: str, why: str) -> None:
    """Found from outside: the detail printed the whole email regex, some 90 characters
    a person had to read to learn the address had no '@'."""
    with pytest.raises(InvalidIdentity) as caught:
        normalise_identity(config, "email", value)
    assert caught.value.detail == f"email is not an email address: {why}"


def test_a_bad_email_without_a_diagnosis_names_where_the_format_is(
    config: IdentityConfig,
) -> None:
    with pytest.raises(InvalidIdentity) as caught:
        normalise_identity(config, "email", "foo@bar.com/x")
    detail = caught.value.detail
    assert detail.startswith("email does not match its format '[^@")
    assert detail.endswith("...' (whole at GET /v1/namespaces)")
    assert len(detail) <= 100, detail


def test_a_short_format_is_shown_whole(config: IdentityConfig) -> None:
    with pytest.raises(InvalidIdentity) as caught:
        normalise_identity(config, "crm_id", "a b")
    assert caught.value.detail == "crm_id does not match its format '[A-Za-z0-9._\\-]{1,128}'"


def test_an_invisible_character_inside_an_email_is_bad_format(config: IdentityConfig) -> None:
    assert drop_reason(config, "email", "evan\u200b@example.com") == "bad_format"
    assert drop_reason(config, "email", "evan@exa\u00admple.com") == "bad_format"


def test_unknown_namespace(config: IdentityConfig) -> None:
    assert drop_reason(config, "twitter", "@evan") == "unknown_namespace"


@pytest.mark.parametrize(
    ("steps", "raw", "normalised"),
    [
        (("trim",), "  aB 1 ", "aB 1"),
        (("lowercase",), " AbC ", " abc "),
        (("uppercase",), "abç", "ABÇ"),
        (("digits",), "+1 (415) ٣ 555", "1415555"),  # ASCII digits only
        (("trim", "e164"), "4155552671", "+14155552671"),
    ],
)
def test_each_step(steps: tuple[str, ...], raw: str, normalised: str) -> None:
    namespace = Namespace("x", "partner", 9, False, normalize=steps)
    assert normalise_value(namespace, raw) == normalised


def test_phone_default_region() -> None:
    namespace = Namespace("phone", "person", 4, False, ("trim", "e164"), default_region="GB")
    assert normalise_value(namespace, "020 7946 0958") == "+442079460958"


def test_hash_after_checks() -> None:
    namespace = Namespace(
        "hashed_email",
        "person",
        3,
        True,
        ("trim", "lowercase"),
        format=re.compile(r"[^@]+@[^@]+"),
        blocked=frozenset({"junk@x.com"}),
        hash=True,
    )
    digest = hashlib.sha256(b"evan@example.com").hexdigest()
    assert normalise_value(namespace, " Evan@Example.com") == digest
    for value, reason in (("JUNK@x.com", "blocked_value"), ("nope", "bad_format")):
        with pytest.raises(InvalidIdentity) as caught:
            normalise_value(namespace, value)
        assert caught.value.reason == reason


def test_invalid_identities_are_dropped_and_the_event_goes_on(
    parse: Parse, envelope: Envelope
) -> None:
    entries = ids(
        ("ecid", "38652"),
        ("email", "test@test.com"),
        ("twitter", "@e"),
        ("phone", "12"),
        ("crm_id", "undefined"),
    )
    event = parse(envelope(identities=entries))
    assert event.identities == [Identity("ecid", "38652")]
    assert event.primary == Identity("ecid", "38652")
    assert event.dropped == [
        DroppedIdentity("email", "blocked_value"),
        DroppedIdentity("twitter", "unknown_namespace"),
        DroppedIdentity("phone", "bad_format"),
        DroppedIdentity("crm_id", "blocked_value"),
    ]


def test_a_null_id_is_the_blocked_value_null(parse: Parse, envelope: Envelope) -> None:
    """CONTRACT 3: a blocked value (null, undefined, empty) is left out and the event goes
    on; a producer with no value at hand often sends JSON null rather than "null"."""
    event = parse(envelope(identities=ids(("crm_id", "C1"), ("email", None))))
    assert event.identities == [Identity("crm_id", "C1")]
    assert event.dropped == [DroppedIdentity("email", "blocked_value")]
    with pytest.raises(Rejected) as caught:
        parse(envelope(identities=ids(("email", None))))
    assert caught.value.reason == "no_valid_identity"


def test_no_valid_identity_names_what_was_dropped(parse: Parse, envelope: Envelope) -> None:
    with pytest.raises(Rejected) as caught:
        parse(envelope(identities=ids(("email", "null"), ("twitter", "x"))))
    assert caught.value.reason == "no_valid_identity"
    assert "'email' (blocked_value" in caught.value.detail
    assert "'twitter' (unknown_namespace" in caught.value.detail


def test_no_valid_identity_says_what_to_fix_in_each(parse: Parse, envelope: Envelope) -> None:
    # The dead letter's detail is all a producer sees: each identity's own sentence,
    # and for a format its pattern, so that the fix needs no look at the configuration.
    with pytest.raises(Rejected) as caught:
        parse(envelope(identities=ids(("email", "null"), ("twitter", "x"), ("crm_id", "a b"))))
    detail = caught.value.detail
    assert "email 'null' is blocked" in detail
    assert "namespace 'twitter' is not configured" in detail
    assert "crm_id does not match its format '[A-Za-z0-9._\\-]{1,128}'" in detail, detail


def test_duplicates_merge_keeping_the_primary_flag(parse: Parse, envelope: Envelope) -> None:
    entries = ids(("email", "A@x.com"), ("ecid", "1"), ("email", " a@X.com"), primary=2)
    event = parse(envelope(identities=entries))
    assert event.identities == [Identity("email", "a@x.com"), Identity("ecid", "1")]
    assert event.primary == Identity("email", "a@x.com")


def test_conflicting_unique_identities(parse: Parse, envelope: Envelope) -> None:
    with pytest.raises(Rejected) as caught:
        parse(envelope(identities=ids(("email", "a@x.com"), ("email", "b@x.com"))))
    assert caught.value.reason == "conflicting_unique_identities"
    assert "a@x.com" not in caught.value.detail  # no personal data in headers and logs


def test_same_unique_value_in_two_spellings_is_one(parse: Parse, envelope: Envelope) -> None:
    event = parse(envelope(identities=ids(("email", "A@x.com"), ("email", "a@x.com"))))
    assert event.identities == [Identity("email", "a@x.com")]


# "José" composed (é, U+00E9) as Windows and most keyboards type it, and decomposed (e and
# U+0301) as macOS file names and some of its input methods give it.
NFC_EMAIL, NFD_EMAIL = "jos\u00e9@example.com", "jose\u0301@example.com"


@pytest.mark.parametrize("raw", [NFD_EMAIL, " JOSE\u0301@Example.com ", NFC_EMAIL])
def test_unicode_equivalent_values_are_one_identity(config: IdentityConfig, raw: str) -> None:
    assert normalise_identity(config, "email", raw) == Identity("email", NFC_EMAIL)


@pytest.mark.parametrize(
    ("steps", "hashed", "raw", "stored"),
    [
        (("uppercase",), False, "ame\u0301lie", "AM\u00c9LIE"),  # NFC, then the steps
        ((), False, "\u212b", "\u00c5"),  # the Angstrom sign is the letter Å
        ((), True, "ame\u0301lie", hashlib.sha256("am\u00e9lie".encode()).hexdigest()),
    ],
)
def test_nfc_comes_before_the_steps_and_the_hash(
    steps: tuple[str, ...], hashed: bool, raw: str, stored: str
) -> None:
    namespace = Namespace("x", "partner", 9, False, normalize=steps, hash=hashed)
    assert normalise_value(namespace, raw) == stored


def test_an_email_in_two_unicode_forms_is_one_unique_value(
    parse: Parse, envelope: Envelope
) -> None:
    event = parse(envelope(identities=ids(("email", NFC_EMAIL), ("email", NFD_EMAIL))))
    assert event.identities == [Identity("email", NFC_EMAIL)]


def test_non_unique_namespace_may_repeat(parse: Parse, envelope: Envelope) -> None:
    event = parse(envelope(identities=ids(("phone", "4155552671"), ("phone", "+442079460958"))))
    assert len(event.identities) == 2


def test_twenty_identities_are_accepted(parse: Parse, envelope: Envelope) -> None:
    event = parse(envelope(identities=ids(*[("ecid", f"c{i}") for i in range(20)])))
    assert len(event.identities) == 20


@pytest.mark.parametrize(
    ("entries", "primary"),
    [
        # No flag: highest priority (lowest number).
        (ids(("ecid", "1"), ("device_id", "dev-1"), ("email", "e@x.com")), ("email", "e@x.com")),
        # No flag, same priority: lowest value.
        (ids(("ecid", "b"), ("ecid", "a"), ("ecid", "c")), ("ecid", "a")),
        # A flag beats priority.
        (ids(("crm_id", "C1"), ("ecid", "1"), primary=1), ("ecid", "1")),
        # A flagged identity that was dropped falls back to priority.
        (
            ids(("email", "null"), ("ecid", "1"), ("phone", "4155552671"), primary=0),
            ("phone", "+14155552671"),
        ),
    ],
)
def test_primary(
    parse: Parse, envelope: Envelope, entries: list[dict[str, Any]], primary: tuple[str, str]
) -> None:
    assert parse(envelope(identities=entries)).primary == Identity(*primary)


def test_multiple_primary(parse: Parse, envelope: Envelope) -> None:
    entries = ids(("crm_id", "C1"), ("ecid", "1"))
    for entry in entries:
        entry["primary"] = True
    with pytest.raises(Rejected) as caught:
        parse(envelope(identities=entries))
    assert caught.value.reason == "multiple_primary"


def test_primary_false_is_no_flag(parse: Parse, envelope: Envelope) -> None:
    entries = [
        {"namespace": "crm_id", "id": "C1", "primary": False},
        {"namespace": "ecid", "id": "1"},
    ]
    assert parse(envelope(identities=entries)).primary == Identity("crm_id", "C1")


def test_shipped_config_blocks_common_junk(config: IdentityConfig) -> None:
    assert "null" in config.namespaces["crm_id"].blocked, (
        "schemas/identity.default.toml: the top-level `blocked` list must come before the "
        "first [table]; below [quarantine] TOML makes it quarantine.blocked"
    )


def test_a_tie_of_priority_between_namespaces_goes_to_the_lowest_key(
    config: IdentityConfig,
) -> None:
    """Two namespaces of one priority: the primary is the lowest namespace:value, as the
    graph's rules rank them, not the lowest value whatever its namespace."""
    tied = dataclasses.replace(config.namespaces["ecid"], priority=5)
    equal = IdentityConfig({**config.namespaces, "ecid": tied})
    entries = ids(("ecid", "a-cookie"), ("device_id", "z-device"))
    assert resolve_identities(entries, equal)[1] == Identity("device_id", "z-device")


def test_kept_normal_forms_belong_to_the_namespace_they_were_made_under(
    config: IdentityConfig,
) -> None:
    """normalise_identity keeps what it made per raw value: a configuration whose
    namespace differs (reloaded, changed) gets its own, and a refusal is never kept."""
    plain = normalise_identity(config, "email", " Kept@Example.com ")
    assert normalise_identity(config, "email", " Kept@Example.com ") is plain
    hashed_spec = dataclasses.replace(config.namespaces["email"], hash=True)
    hashed = IdentityConfig({**config.namespaces, "email": hashed_spec})
    digest = hashlib.sha256(b"kept@example.com").hexdigest()
    assert normalise_identity(hashed, "email", " Kept@Example.com ") == Identity("email", digest)
    assert normalise_identity(config, "email", " Kept@Example.com ") == plain
    for _ in range(2):
        assert drop_reason(config, "email", "not an address") == "bad_format"


def test_an_identity_whose_key_was_read_compares_as_a_fresh_one() -> None:
    """Identity.key is cached in the instance, outside its compared and hashed fields."""
    used = Identity("email", "a@x.com")
    assert used.key == "email:a@x.com" == used.key
    fresh = Identity("email", "a@x.com")
    assert used == fresh and hash(used) == hash(fresh) and not used < fresh
    assert dataclasses.asdict(used) == {"namespace": "email", "id": "a@x.com"}
    assert dataclasses.replace(used, id="b@x.com").key == "email:b@x.com"


def _resolved_by_the_rules(
    entries: list[dict[str, Any]], config: IdentityConfig
) -> tuple[list[Identity], Identity, list[DroppedIdentity]]:
    """resolve_identities as the rules read, one step at a time (CONTRACT 4)."""
    flags: dict[Identity, bool] = {}  # first-seen order; a duplicate ors its flag in
    dropped, flagged = [], set()
    for entry in entries:
        is_primary = entry.get("primary") is True
        try:
            identity = normalise_identity(config, entry["namespace"], entry["id"])
        except InvalidIdentity as exc:
            dropped.append(DroppedIdentity(entry["namespace"], exc.reason))
            flagged |= {(entry["namespace"], str(entry["id"]))} if is_primary else set()
            continue
        flags[identity] = flags.get(identity, False) or is_primary
        flagged |= {(identity.namespace, identity.id)} if is_primary else set()
    if not flags:
        why = ", ".join(f"{d.namespace!r} ({d.reason})" for d in dropped)
        raise Rejected("no_valid_identity", f"no valid identity left; dropped: {why}")
    for a, b in itertools.combinations(flags, 2):
        if a.namespace == b.namespace and config.namespaces[a.namespace].unique:
            raise Rejected("conflicting_unique_identities", a.namespace)
    if len(flagged) > 1:
        raise Rejected("multiple_primary", f"{len(flagged)} identities flagged primary, at most 1")
    chosen = [identity for identity, flag in flags.items() if flag]
    rank = {i: (config.namespaces[i.namespace].priority, i.key) for i in flags}
    return list(flags), chosen[0] if chosen else min(flags, key=rank.__getitem__), dropped


ENTRY = st.fixed_dictionaries(
    {
        "namespace": st.sampled_from(["crm_id", "email", "phone", "ecid", "nope"]),
        "id": st.sampled_from(
            ["A1", " A1 ", "b@x.io", "B@X.io ", "null", "", 7, None, "+14155552671"]
        ),
    },
    optional={"primary": st.sampled_from([True, False, 1])},
)


@given(entries=st.lists(ENTRY, min_size=1, max_size=6))
def test_identities_resolve_as_the_rules_read(
    config: IdentityConfig, entries: list[dict[str, Any]]
) -> None:
    try:
        want: Any = _resolved_by_the_rules(entries, config)
    except Rejected as rejected:
        want = rejected.reason
    try:
        got: Any = resolve_identities(entries, config)
    except Rejected as rejected:
        got = rejected.reason
    assert got == want


@pytest.mark.parametrize("raw", ["(555) 555-0123", "+1 555 555 0123", "555.555.0123", "5555550123"])
def test_a_blocked_value_blocks_every_form_of_it(raw: str) -> None:
    """A file's blocked value written as people write it blocks each spelling that
    normalises to the same identity, not only the spelling in the file."""
    namespace = Namespace(
        "phone", "person", 4, False, ("trim", "e164"), blocked=frozenset({"555-555-0123"})
    )
    with pytest.raises(InvalidIdentity) as caught:
        normalise_value(namespace, raw)
    assert caught.value.reason == "blocked_value"
    assert normalise_value(namespace, "555-555-0124") == "+15555550124"


def test_a_value_that_normalises_to_nothing_is_empty() -> None:
    namespace = Namespace("account", "person", 4, False, ("trim", "digits"))
    with pytest.raises(InvalidIdentity) as caught:
        normalise_value(namespace, "n/a-x")
    assert caught.value.reason == "blocked_value"
    assert str(caught.value).endswith("account is empty")
