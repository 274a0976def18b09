"""Identities normalised per namespace (CONTRACT 4) and the event's primary identity."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import phonenumbers

from pipeline.identity.config import IdentityConfig, Namespace
from pipeline.ingest.formats import format_problem
from pipeline.kept import Kept
from pipeline.model import DroppedIdentity, Identity, Rejected

# Longer raw values are never identities; the bound keeps format regexes and phone
# parsing cheap on hostile input.
MAX_ID_CHARS = 1024

_NON_DIGITS = re.compile(r"[^0-9]")  # not \D: that keeps Unicode digits such as '٣'
# Format characters (Unicode Cf) that show nothing and come with copied values: soft
# hyphen, zero-width space and joiners, direction marks and embeddings, word joiner and
# invisible operators, byte-order mark. str.strip() keeps them.
INVISIBLE = "\u00ad\u061c\u180e\u200b\u200c\u200d\u200e\u200f" + "".join(
    map(chr, [*range(0x202A, 0x202F), *range(0x2060, 0x2065), *range(0x2066, 0x2070), 0xFEFF])
)
# A person's identities come back event after event: their normalised forms are kept,
# (namespace, raw string) -> (the Namespace it was made under, the identity). A hit is
# ~0.2 us where normalising took 1-2 (a phone number's parse far more). At most 32,768
# (that many bench cookies took ~10 MB with their strings).
_NORMALISED: Kept[tuple[str, str], tuple[Namespace, Identity]] = Kept(32_768)


class InvalidIdentity(Rejected):
    """An identity that cannot be used: left out of an event, or a privacy request's
    reason to be rejected. ``reason`` is unknown_namespace, blocked_value or bad_format."""


def _e164(value: str, namespace: Namespace) -> str:
    try:
        number = phonenumbers.parse(value, namespace.default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentity(
            "bad_format", f"{namespace.name} is not a phone number: {exc}"
        ) from exc
    # Possible (a full number of a right length for its country), not "valid": validity
    # also asks that a carrier holds the range, which rejects fictional test numbers
    # (+1 555 ...) and ranges newer than the library's metadata. Local-only numbers
    # have no area code, so no E.164 form.
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise InvalidIdentity("bad_format", f"{namespace.name} is not a complete phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _trim(value: str, namespace: Namespace) -> str:
    """Whitespace and invisible characters off both ends, however they alternate."""
    value = value.strip()
    while value and (value[0] in INVISIBLE or value[-1] in INVISIBLE):
        value = value.strip(INVISIBLE).strip()
    return value


_STEPS: dict[str, Callable[[str, Namespace], str]] = {
    "trim": _trim,
    "lowercase": lambda value, _: value.lower(),
    "uppercase": lambda value, _: value.upper(),
    "digits": lambda value, _: _NON_DIGITS.sub("", value),
    "e164": _e164,
}


def normalise_value(namespace: Namespace, value: object) -> str:
    """The stored form of ``value`` in ``namespace``, or ``InvalidIdentity``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None:  # JSON null: what producers send for "no value", as "null" is
        raise InvalidIdentity("blocked_value", f"{namespace.name} is null")
    if not isinstance(value, str):
        raise InvalidIdentity("bad_format", f"{namespace.name} must be a string or an integer")
    if len(value) > MAX_ID_CHARS:
        raise InvalidIdentity(
            "bad_format", f"{namespace.name} has {len(value)} characters, at most {MAX_ID_CHARS}"
        )
    # One identity however its characters were composed ("é" as one code point or as
    # "e" and a combining accent, as macOS and Windows type it): NFC before the steps.
    value = unicodedata.normalize("NFC", value)
    # Junk such as "null" is blocked before the steps too: e164 would call it bad_format.
    _check_blocked(namespace, value.strip(), namespace.blocked)
    value = _normalised(namespace, value)
    _check_blocked(namespace, value, _blocked_forms(namespace))
    if namespace.format is not None and not namespace.format.fullmatch(value):
        raise InvalidIdentity(
            "bad_format", format_problem(namespace.name, namespace.format.pattern, value)
        )
    return hashlib.sha256(value.encode()).hexdigest() if namespace.hash else value


def _normalised(namespace: Namespace, value: str) -> str:
    for step in namespace.normalize:
        value = _STEPS[step](value, namespace)
    return value


@functools.cache
def _blocked_forms(namespace: Namespace) -> frozenset[str]:
    """The blocked values and their normalised forms: an entry written as people write
    it ("555-555-0123") blocks every spelling of that identity ("(555) 555-0123")."""
    forms = set(namespace.blocked)
    for blocked in namespace.blocked:
        with contextlib.suppress(InvalidIdentity):  # "null" is no phone: kept as written
            forms.add(_normalised(namespace, blocked).casefold())
    return frozenset(forms)


def _check_blocked(namespace: Namespace, value: str, blocked: frozenset[str]) -> None:
    if not value:
        raise InvalidIdentity("blocked_value", f"{namespace.name} is empty")
    if value.casefold() in blocked:
        raise InvalidIdentity("blocked_value", f"{namespace.name} {value!r} is blocked")


def normalise_identity(config: IdentityConfig, namespace: str, value: object) -> Identity:
    """The normalised identity, or ``InvalidIdentity`` saying why there is none."""
    spec = config.namespaces.get(namespace)
    if spec is None:
        raise InvalidIdentity(
            "unknown_namespace", f"namespace {_short(namespace)} is not configured"
        )
    if type(value) is not str:  # an int's key could equal a bool's or a float's
        return Identity(namespace, normalise_value(spec, value))
    # Normalising is a pure function of the Namespace: a reloaded configuration's
    # objects are others, so what an earlier one made is never taken for theirs.
    try:
        made_under, identity = _NORMALISED[namespace, value]
        if made_under is spec:
            return identity
    except KeyError:
        pass
    identity = Identity(namespace, normalise_value(spec, value))
    _NORMALISED.keep((namespace, value), (spec, identity))
    return identity


def resolve_identities(
    entries: Sequence[dict[str, Any]], config: IdentityConfig
) -> tuple[list[Identity], Identity, list[DroppedIdentity]]:
    """An envelope's identities -> (kept, in first-seen order; primary; dropped).

    Invalid ones are dropped; the event is rejected when none is left, when a unique
    namespace has two values, or when more than one is flagged primary.
    """
    # By key: a str caches its hash, where an Identity's dataclass hash is a Python call.
    kept: dict[str, Identity] = {}  # first-seen order; duplicates merge here
    dropped: list[DroppedIdentity] = []
    why: list[str] = []  # what to fix, should no identity be left
    flagged: set[tuple[str, str]] = set()
    chosen: Identity | None = None  # the first kept identity flagged primary
    for entry in entries:
        namespace, value = entry["namespace"], entry["id"]
        is_primary = entry.get("primary") is True
        try:
            identity = normalise_identity(config, namespace, value)
        except InvalidIdentity as exc:
            dropped.append(DroppedIdentity(namespace, exc.reason))
            why.append(f"{_short(namespace)} ({exc.reason}: {exc.detail})")
            if is_primary:
                flagged.add((namespace, str(value)))
            continue
        kept.setdefault(identity.key, identity)
        if is_primary:
            flagged.add((identity.namespace, identity.id))
            chosen = chosen or identity
    if not kept:
        raise Rejected("no_valid_identity", f"no valid identity left; dropped: {', '.join(why)}")
    identities = list(kept.values())
    _check_unique(identities, config)
    if len(flagged) > 1:
        raise Rejected("multiple_primary", f"{len(flagged)} identities flagged primary, at most 1")
    # A flagged identity that was dropped leaves the choice to priority. One kept flagged
    # identity at most is left here, so the first flagged is the first in kept order.
    primary = chosen
    if primary is None:
        spec = config.namespaces
        # Ties of priority go to the lowest key (namespace:value), the order the graph's
        # rules use, so two namespaces of one priority rank alike everywhere.
        primary = (
            identities[0]
            if len(identities) == 1
            else min(identities, key=lambda i: (spec[i.namespace].priority, i.key))
        )
    return identities, primary, dropped


def _check_unique(kept: list[Identity], config: IdentityConfig) -> None:
    first: dict[str, str] = {}
    for identity in kept:
        unique = config.namespaces[identity.namespace].unique
        if unique and first.setdefault(identity.namespace, identity.id) != identity.id:
            raise Rejected(
                "conflicting_unique_identities",
                f"two different {identity.namespace} values in one event; "
                f"{identity.namespace} is unique, so an event names one person",
            )


def _short(text: str) -> str:
    return repr(text if len(text) <= 64 else text[:61] + "...")
