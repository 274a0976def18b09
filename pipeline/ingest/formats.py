"""What a person reads when a value fails its namespace's format check (bad_format).

A format is a regex, and the default email one is some 90 characters: printed whole it
says nothing a producer can act on. An email-like format (one with an '@') gets what is
wrong with the address; any other gets its pattern, cut short, and where it is whole.
"""

from __future__ import annotations

import re

SHOWN_CHARS = 32  # a longer pattern is cut to this many characters
_SPECIALS = re.compile(r'[()\[\]\\,;:"]')  # RFC 5322's specials, bar those named first
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060\ufeff]")


def format_problem(name: str, pattern: str, value: str) -> str:
    """One sentence on why ``value`` does not match namespace ``name``'s ``pattern``."""
    if "@" in pattern:
        why = _email_problem(value)
        if why is not None:
            return f"{name} is not an email address: {why}"
    if len(pattern) <= SHOWN_CHARS:
        return f"{name} does not match its format '{pattern}'"
    cut = pattern[:SHOWN_CHARS]
    return f"{name} does not match its format '{cut}...' (whole at GET /v1/namespaces)"


def _email_problem(value: str) -> str | None:
    """The first thing that makes ``value`` no bare address, or None if none is plain."""
    local, at, domain = value.partition("@")
    checks = (
        (value.lower().startswith("mailto:"), "a scheme ('mailto:')"),
        (any(c in value for c in "<>"), "a display name or angle brackets"),
        (not at, "no '@'"),
        ("@" in domain, "more than one '@'"),
        (not local, "nothing before '@'"),
        (not domain, "nothing after '@'"),
        (any(c.isspace() for c in value), "a space"),
        (_INVISIBLE.search(value) is not None, "an invisible character"),
        (domain.endswith("."), "the domain ends with a dot"),
        ("." not in domain, "no dot in the domain"),
        ("" in domain.split("."), "an empty label in the domain"),
    )
    for failed, why in checks:
        if failed:
            return why
    special = _SPECIALS.search(value)
    return None if special is None else f"{special.group()!r} in it"
