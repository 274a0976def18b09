"""Event timestamps -> epoch milliseconds (UTC), within a plausible range."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta, timezone

from pipeline.ingest.envelope import EVENT_SCHEMA
from pipeline.model import Rejected

EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00:00Z: older data is a bug, not history
MAX_AHEAD_MS = 86_400_000  # one day of producer clock skew

# Its groups: y, m, d, H, M, S, fraction, zone of ISO-8601's extended format, the same
# eight of its basic format, then the whole digits of epoch ms in a string. One regex
# for all three: a JSON Schema pattern has no conditionals to share the groups.
_TEXT = EVENT_SCHEMA.patterns["timestamp"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_MINUTE_OF_DAY = 23 * 60 + 59


def clock_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_timestamp(value: object, now: int) -> int:
    """Epoch ms of an ISO-8601 string with a zone, or of epoch ms as a number or a
    string of digits ("1764500000000", as SDKs and CSV exports send it).

    ``now`` (epoch ms) is a parameter so that the future bound is testable.
    """
    number: int | None  # epoch ms as given, for the unit hint; None for ISO-8601
    if isinstance(value, str):
        ms, number = _text_to_ms(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        ms = number = value
    elif isinstance(value, float) and math.isfinite(value):
        # `time.time() * 1000` has a fraction: dropped, as an ISO timestamp's digits
        # after the milliseconds are.
        ms = number = math.floor(value)
    else:
        raise Rejected("bad_timestamp", "timestamp must be an ISO-8601 string or epoch ms")
    if ms < EARLIEST_MS:
        raise Rejected("bad_timestamp", f"timestamp {value!r} is before 2000{_unit(number, now)}")
    if ms > now + MAX_AHEAD_MS:
        raise Rejected(
            "bad_timestamp",
            f"timestamp {value!r} is more than a day in the future{_unit(number, now)}",
        )
    return ms


def _unit(value: int | None, now: int) -> str:
    """What to fix when out-of-range epoch ms are a plausible time in another unit."""
    if value is None:
        return ""
    as_ms = (
        ("seconds", value * 1000),
        ("microseconds", value // 1000),
        ("nanoseconds", value // 10**6),
    )
    for unit, ms in as_ms:
        if EARLIEST_MS <= ms <= now + MAX_AHEAD_MS:
            return f" (epoch {unit}? timestamp takes epoch milliseconds)"
    return ""


def _text_to_ms(text: str) -> tuple[int, int | None]:
    """(epoch ms, the same if ``text`` was digits else None)."""
    match = _TEXT.fullmatch(text)
    if match is None:
        raise Rejected(
            "bad_timestamp",
            f"timestamp {text[:60]!r} is not ISO-8601 with a zone (Z, ±hh:mm, ±hhmm or ±hh)"
            " or epoch milliseconds",
        )
    groups = match.groups()
    digits = groups[16]
    if digits is not None:
        ms = int(digits)  # at most 20 digits; the fraction is dropped, as a float's is
        return ms, ms
    year, month, day, hour, minute, second, fraction, zone = (
        groups[:8] if groups[0] is not None else groups[8:16]
    )
    leap = second == "60"
    try:
        offset = timedelta(0) if zone in ("Z", "z") else _offset(zone)
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            59 if leap else int(second or 0),
            tzinfo=timezone(offset),
        )
    except ValueError as exc:  # month 13, 24:00, offset >= 24h
        raise Rejected("bad_timestamp", f"timestamp {text!r}: {exc}") from exc
    if leap:
        return _leap_second_ms(text, moment), None
    millis = int((fraction or "0").ljust(3, "0")[:3])  # truncate: ms is the resolution
    return (moment - _EPOCH) // timedelta(milliseconds=1) + millis, None


def _leap_second_ms(text: str, moment: datetime) -> int:
    """A leap second (23:59:60 UTC) as the last millisecond of its minute: epoch time
    has no 61st second, and this keeps it after the minute's other times and before the
    next day's, whatever its fraction. Second 60 anywhere else is no time at all."""
    utc = moment.astimezone(UTC)
    if utc.hour * 60 + utc.minute != _LAST_MINUTE_OF_DAY:
        raise Rejected(
            "bad_timestamp", f"timestamp {text!r}: second 60 is a leap second, only at 23:59 UTC"
        )
    return (moment - _EPOCH) // timedelta(milliseconds=1) + 999


def _offset(zone: str) -> timedelta:
    """±hh:mm, ±hhmm or ±hh."""
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
