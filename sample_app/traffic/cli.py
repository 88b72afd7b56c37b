"""`python -m sample_app.traffic`: the options, shared with `o11ykit app traffic`.

Each option is converted and checked by the same function TrafficConfig uses, so a bad
value is reported by argparse against its option, with the value, before anything runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from sample_app.topology import BY_NAME, EDGE
from sample_app.traffic import config as checks
from sample_app.traffic.config import TrafficConfig
from sample_app.traffic.runner import run_traffic
from sample_app.traffic.summary import TrafficSummary

DEFAULT_URL = f"http://127.0.0.1:{BY_NAME[EDGE].port}"
UNBOUNDED = "give --duration SECONDS or --requests N: a run is never unbounded"

T = TypeVar("T")


_KINDS = {int: "a whole number", float: "a number"}


def _option(convert: Callable[[str], T], check: Callable[[T], object]) -> Callable[[str], T]:
    """An argparse type: converts, checks, and names the bad value in argparse's error."""

    def parse(text: str) -> T:
        try:
            value = convert(text)
        except ValueError:
            kind = _KINDS.get(convert, "valid")
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        try:
            check(value)
        except ValueError as problem:
            raise argparse.ArgumentTypeError(str(problem)) from None
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The traffic options, for this module's command and for `o11ykit app traffic`."""
    add = parser.add_argument
    add(
        "--url",
        type=_option(str, checks.check_url),
        help=f"the gateway's base URL ({DEFAULT_URL})",
    )
    add(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="a host --url may name besides loopback, e.g. gateway in compose (repeatable)",
    )
    add(
        "--rate",
        type=_option(float, checks.check_rate),
        default=10.0,
        help=f"requests per second across all visitors (10; at most {checks.MAX_RATE:g})",
    )
    add(
        "--duration",
        type=_option(float, checks.check_duration),
        metavar="SECONDS",
        help=f"stop after this many seconds (at most {checks.MAX_DURATION_S:g})",
    )
    add(
        "--requests",
        type=_option(int, checks.check_max_requests),
        metavar="N",
        help="stop after this many requests",
    )
    add(
        "--concurrency",
        type=_option(int, checks.check_concurrency),
        default=8,
        help="visits in progress at once (8)",
    )
    add(
        "--timeout",
        type=_option(float, checks.check_timeout),
        default=10.0,
        metavar="SECONDS",
        help="give up on one request after this long (10)",
    )
    add("--seed", type=int, default=1, help="the same seed makes the same visits (1)")
    add(
        "--personas",
        type=_option(str, checks.parse_personas),
        help="browse,search,cart,checkout,staff; or weights: browse=5,checkout=1",
    )
    add(
        "--focus-tenant",
        type=_option(str, checks.check_tenant),
        metavar="SHOP",
        help="send --focus-share of the visits to this shop",
    )
    add(
        "--focus-user",
        type=_option(str, checks.check_user),
        metavar="USER",
        help="send --focus-share of the visits as this user, e.g. acme-c00003",
    )
    add(
        "--focus-share",
        type=_option(float, checks.check_share),
        default=0.0,
        metavar="SHARE",
        help="share of visits to the focus, 0..1",
    )
    add("--journal", metavar="FILE", help="write one JSON line per request to FILE")
    add(
        "--progress",
        choices=checks.PROGRESS_MODES,
        default="auto",
        help="auto: a live line on a terminal, nothing otherwise; plain: a line every 5 s",
    )


def config_from_args(
    args: argparse.Namespace, parser: argparse.ArgumentParser | None = None
) -> TrafficConfig:
    """The TrafficConfig the options describe. What only a combination of options can get
    wrong (no bound, a focus without a share) goes to `parser.error` when a parser is
    given, and is raised as ValueError otherwise."""
    try:
        return _config(args)
    except ValueError as problem:
        if parser is None:
            raise
        parser.error(_with_the_bound(args, problem))


def _config(args: argparse.Namespace, max_requests: int | None = None) -> TrafficConfig:
    return TrafficConfig(
        base_url=args.url or DEFAULT_URL,
        rate=args.rate,
        duration_s=args.duration,
        max_requests=args.requests if max_requests is None else max_requests,
        concurrency=args.concurrency,
        seed=args.seed,
        personas=args.personas,
        focus_tenant=args.focus_tenant,
        focus_user=args.focus_user,
        focus_share=args.focus_share,
        journal=args.journal,
        timeout_s=args.timeout,
        progress=args.progress,
        allow_hosts=args.allow_host,
    )


def _with_the_bound(args: argparse.Namespace, problem: ValueError) -> str:
    """The problem, and the missing bound's option when none was given. The bound's message
    alone hid whatever else was wrong (a host that is not loopback) until it was given."""
    if args.duration is not None or args.requests is not None:
        return str(problem)
    try:
        _config(args, max_requests=1)  # what else is wrong, once bounded
    except ValueError as other:
        return f"{other}; and {UNBOUNDED}"
    return UNBOUNDED


async def until_signalled(config: TrafficConfig) -> TrafficSummary:
    """Ctrl-C or SIGTERM ends the run the same way the stop event does: with a summary."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(number, stop.set)
    return await run_traffic(config, stop=stop)


def command_line(config: TrafficConfig) -> list[str]:
    """`python -m sample_app.traffic` with the options that make `config`, for a run in its
    own process (a lab's or a drill's background traffic)."""
    command = [sys.executable, "-m", "sample_app.traffic", "--url", config.base_url]
    for host in config.allow_hosts:
        command += ["--allow-host", host]
    command += ["--rate", str(config.rate), "--seed", str(config.seed)]
    command += ["--concurrency", str(config.concurrency), "--timeout", str(config.timeout_s)]
    if config.duration_s is not None:
        command += ["--duration", str(config.duration_s)]
    if config.max_requests is not None:
        command += ["--requests", str(config.max_requests)]
    command += ["--personas", ",".join(f"{name}={weight}" for name, weight in config.mix.items())]
    if config.focus_tenant:
        command += ["--focus-tenant", config.focus_tenant]
    if config.focus_user:
        command += ["--focus-user", config.focus_user]
    if config.focus_share:
        command += ["--focus-share", str(config.focus_share)]
    if config.journal is not None:
        command += ["--journal", str(config.journal)]
    return [*command, "--progress", config.progress]


def describe(summary: TrafficSummary, url: str) -> str:
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(summary.by_status.items()))
    lines = [
        f"{summary.total} requests to {url} in {summary.elapsed_s:.1f} s "
        f"({summary.rate:.1f}/s), {summary.visits} visits",
        f"statuses: {statuses or '-'}; no answer: {summary.transport_errors}; "
        f"errors (5xx and no answer): {summary.errors}",
        "personas: " + json.dumps(summary.by_persona),
    ]
    if summary.errors_by_tenant:
        lines.append("errors by tenant: " + json.dumps(summary.errors_by_tenant))
    if summary.cancelled:
        lines.append(f"cancelled at the end: {summary.cancelled}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sample_app.traffic",
        description="Send shoppers' and staff's requests to the sample gateway.",
    )
    add_arguments(parser)
    config = config_from_args(parser.parse_args(argv), parser)
    summary = asyncio.run(until_signalled(config))
    print(describe(summary, config.base_url), flush=True)
    if summary.total and summary.transport_errors == summary.total:
        hint = f"no request got an answer: is the gateway running at {config.base_url}?"
        print(hint, file=sys.stderr)
        return 1
    return 0
