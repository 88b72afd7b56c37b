"""argparse types shared by the `o11ykit` commands.

Each refuses a bad value with a message that says what it accepts; argparse puts the
option's name in front ("argument --since: ...") and exits with status 2.
"""

from __future__ import annotations

import argparse


def port(text: str) -> int:
    """A TCP port, 0 for any free one."""
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: 0 to 65535 (0: any free port)")
    return number


def positive(text: str) -> int:
    """A whole number of at least 1."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
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
