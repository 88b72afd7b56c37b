"""argparse types shared by the `o11ykit` commands, and `whole_number`, which the store's
query parameters read counts with too (one spelling of a count everywhere).

Each type refuses a bad value with a message that says what it accepts; argparse puts the
option's name in front ("argument --since: ...") and exits with status 2.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# A count as the docs list it: ASCII digits, an optional sign ("+5"). int() also takes
# "1_0", fullwidth or Arabic-Indic digits and spaces around, which no doc promises.
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def whole_number(text: str) -> int | None:
    """The integer `text` writes in ASCII digits with an optional sign; None for anything
    else, which each caller refuses in its own words."""
    if not _WHOLE_NUMBER.fullmatch(text):
        return None
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        return None


def refuse_bad_settings(
    settings: Iterable[tuple[str, Callable[[str], object], object]], *, none_is_unset: bool = True
) -> None:
    """For an importable API taking what an option takes: ValueError naming the first
    (name, parser, value) whose option's parser refuses the value. None is a setting left
    unset, unless `none_is_unset` is False: then it is refused like any other bad value."""
    for name, parse, value in settings:
        if value is not None or not none_is_unset:
            try:
                parse(str(value))
            except argparse.ArgumentTypeError as exc:
                raise ValueError(f"{name}: {exc}") from None


def port(text: str) -> int:
    """A TCP port, 0 for any free one."""
    number = whole_number(text)
    if number is None or not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: 0 to 65535 (0: any free port)")
    return number


def positive(text: str) -> int:
    """A whole number of at least 1."""
    number = whole_number(text)
    if number is None or number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return number


def go_duration(text: str) -> str:
    """A Go duration ("250ms", "1.5s", "1h30m"), checked and kept as text: it is sent on so."""
    from o11ykit.timeformats import parse_duration  # here: `o11ykit` alone stays quick to start

    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def positive_duration(text: str) -> str:
    """A Go duration of more than 0, kept as text: how far back, or a threshold."""
    from o11ykit.timeformats import parse_duration

    if parse_duration(go_duration(text)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not more than 0 (like 15m, 1h, 250ms)")
    return text


def rfc3339_time(text: str) -> datetime:
    """An RFC 3339 time with its offset ("2026-12-07T14:05:00Z"), as Jaeger's API takes it;
    held to the microsecond, as datetimes are."""
    from o11ykit.timeformats import parse_time

    try:
        nanoseconds = parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return _EPOCH + timedelta(microseconds=nanoseconds // 1000)


def max_age(text: str) -> float:
    """Seconds, or a Go duration ("24h"), of more than 0 and at most the store's longest."""
    from o11ykit.store.ingest import MAX_AGE_SECONDS  # `store serve` imports it next anyway
    from o11ykit.timeformats import parse_duration

    accepts = "seconds, or a duration like 24h, more than 0 and at most about 292 years"
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parse_duration(text) / 1e9
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {accepts}") from None
    if not 0 < seconds <= MAX_AGE_SECONDS:  # `not`, so that nan is refused too
        raise argparse.ArgumentTypeError(f"{text!r} is not {accepts}")
    return seconds


# The most a store answers: traces a search, groups a breakdown, pairs a comparison.
MAX_LIMIT = 1000


def limit(text: str) -> int:
    """How many rows at most: a whole number from 1 to MAX_LIMIT."""
    number = whole_number(text)
    if number is None or not 1 <= number <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {MAX_LIMIT}")
    return number


def attribute_key(text: str) -> str:
    """An attribute key (tenant.id), or one of the span's own fields (name, status, kind)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "an empty key: give an attribute key like tenant.id, or name, status or kind"
        )
    return text.strip()


def query_url(text: str) -> str:
    """An absolute http(s) URL, as the query_url setting takes it."""
    from o11ykit.settings_parsers import base_url, without_secrets

    try:
        return base_url(text)
    except ValueError as exc:
        shown = without_secrets(text)  # a password given is not repeated back
        wanted = str(exc).removeprefix("accepted values: ")
        raise argparse.ArgumentTypeError(
            f"{shown!r} is not {wanted}, like http://127.0.0.1:16686"
        ) from None
