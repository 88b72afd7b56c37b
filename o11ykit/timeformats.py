"""Times and durations as Jaeger's HTTP API writes them: RFC 3339 and Go durations.

Shared by the store's query server and the query client, so both read the same text the
same way. Everything is in Unix nanoseconds; errors are ValueError naming what was wrong.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

# A fraction of any length, after "." or ",", as Go's time.Parse (Jaeger's) reads it: digits
# past the ninth are dropped. ASCII digits only (\d would take "５").
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]+))?(Z|z|[+-][0-9]{2}:[0-9]{2})"
)
# Times and durations in nanoseconds as OTLP, SQLite and Go keep them: signed 64-bit, so
# times from 1677-09-21 to 2262-04-11 and durations up to 2562047h47m16.854775807s.
MIN_NS, MAX_NS = -(2**63), 2**63 - 1
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def parse_time(text: str) -> int:
    """RFC 3339, fraction down to nanoseconds, an offset -> Unix nanoseconds (clamp_ns)."""
    match = _RFC3339.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not an RFC 3339 time (2026-11-22T10:00:00Z)")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, offset = (match.group(7) or "")[:9], match.group(8)
    try:
        # Year 0, which Go takes and Python's datetime does not, is checked as 2000 (both
        # leap years) and then clamped as any time before 1677 is.
        moment = datetime(year or 2000, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    if year == 0:
        return MIN_NS
    seconds = int(moment.timestamp())
    if offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        # As Go's time.Parse (Jaeger's) takes them: hours to 24, minutes to 60.
        if hours > 24 or minutes > 60:
            raise ValueError(f"{text!r}: the offset {offset} is beyond 24 hours and 60 minutes")
        seconds -= sign * (hours * 3600 + minutes * 60)
    return clamp_ns(seconds * 1_000_000_000 + int(fraction.ljust(9, "0")))


def clamp_ns(nanoseconds: int) -> int:
    """A time held in 64 bits. Beyond them it means what the limit means as a bound: no
    span starts after 2262 (or before 1677), so `9999-12-31T23:59:59Z` is "no end"."""
    return max(MIN_NS, min(MAX_NS, nanoseconds))


def format_time(moment: datetime | int) -> str:
    """A datetime (naive = UTC) or Unix nanoseconds as RFC 3339 in UTC, nanosecond precision."""
    nanoseconds = moment if isinstance(moment, int) else datetime_ns(moment)
    seconds, fraction = divmod(nanoseconds, 10**9)
    clock = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{clock}.{fraction:09d}Z"


def format_second(moment: datetime | int) -> str:
    """A datetime (naive = UTC) or whole Unix seconds as RFC 3339 in UTC, to the second it
    falls in ("2026-12-07T14:05:00Z"): a time a person reads and types after --start."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_clock(nanoseconds: int) -> str:
    """Unix nanoseconds as a UTC wall clock to the millisecond, for people to read."""
    seconds, fraction = divmod(nanoseconds, 10**9)
    clock = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"{clock}.{fraction // 10**6:03d}"


def datetime_ns(moment: datetime) -> int:
    """A datetime (naive = UTC) as Unix nanoseconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    whole = int(moment.replace(microsecond=0).timestamp())
    return whole * 10**9 + moment.microsecond * 1_000


def parse_duration(text: str) -> int:
    """A Go duration ("1.5s", "250ms", "10us", "1h30m") -> nanoseconds, exactly."""
    body = text.strip()
    sign = -1 if body.startswith("-") else 1
    if body[:1] in ("-", "+"):  # one sign at most, as Go's time.ParseDuration takes it
        body = body[1:]
    if body == "0":
        return 0
    total = Decimal(0)
    position = 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != position:
            break
        try:
            total += Decimal(match.group(1)) * _UNITS[match.group(2)]
        except InvalidOperation:
            break
        position = match.end()
    if not body or position != len(body):
        raise ValueError(f"{text!r} is not a duration (like 1.5s, 250ms, 10us, 1h30m)")
    if total > MAX_NS:  # as Go's time.ParseDuration refuses it
        raise ValueError(f"{text!r} is out of range: durations stop at 2562047h47m16.854775807s")
    return sign * int(total)


def format_duration(nanoseconds: int) -> str:
    """Nanoseconds as the shortest exact Go duration text ("250ms", "1500us"); 0 is "0s",
    as Go prints it."""
    if nanoseconds == 0:
        return "0s"
    for unit in ("h", "m", "s", "ms", "us"):
        if nanoseconds % _UNITS[unit] == 0:
            return f"{nanoseconds // _UNITS[unit]}{unit}"
    return f"{nanoseconds}ns"
