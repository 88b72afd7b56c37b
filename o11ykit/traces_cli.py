"""`o11ykit traces services|search|show|breakdown|compare`: traces in the terminal, with Rich.

Every command talks to the Jaeger API v3 (the local store's or a real Jaeger's) through
JaegerQuery, and ends with the Jaeger UI link showing the same thing, for learners who
would rather click. Rich drops colour by itself when stdout is not a terminal.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from o11ykit.argtypes import (
    MAX_LIMIT,
    attribute_key,
    go_duration,
    limit,
    positive_duration,
    query_url,
    rfc3339_time,
)
from o11ykit.attribute_text import search_text
from o11ykit.backends.jaeger_query import (
    JaegerQuery,
    QueryError,
    SpanView,
    Trace,
    ui_search_link,
    ui_trace_link,
)
from o11ykit.timeformats import datetime_ns, format_clock, parse_duration, parse_time

DEFAULT_URL = "http://127.0.0.1:16686"
DEFAULT_SINCE = "15m"
BAR_WIDTH = 40
# Below this many columns the search's table and a 40-column timeline do not fit.
TABLE_WIDTH = 120
NARROW_BAR_WIDTH = 20
ERROR_MARK = "✗"
PIPED_WIDTH = 140
NOT_FOUND = 404  # what the query API answered for a trace it does not hold
# C0 and C1 control characters but tab and newline, and DEL: see printable().
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `traces` and its commands to the `o11ykit` command's subparsers."""
    traces = subparsers.add_parser("traces", help="search, show and break down traces")
    commands = traces.add_subparsers(dest="traces_command", required=True, metavar="COMMAND")

    services = commands.add_parser("services", help="the services that sent spans")
    _common(services)
    services.set_defaults(run=_runner(_services))

    search = commands.add_parser("search", help="find traces")
    _common(search)
    _filters(search)
    search.add_argument("--min-duration", type=go_duration, help="a Go duration, e.g. 250ms")
    search.add_argument("--max-duration", type=go_duration, help="a Go duration, e.g. 2s")
    search.add_argument(
        "--limit", type=limit, default=20, help=f"traces at most, to {MAX_LIMIT} (default 20)"
    )
    search.set_defaults(run=_runner(_search))

    show = commands.add_parser("show", help="one trace as a waterfall")
    _common(show)
    show.add_argument("trace_id")
    show.add_argument("--attrs", action="store_true", help="print each span's attributes")
    show.set_defaults(run=_runner(_show))

    breakdown = commands.add_parser("breakdown", help="spans grouped by an attribute")
    _common(breakdown)
    _filters(breakdown)
    breakdown.add_argument(
        "--by", type=attribute_key, required=True, help="attribute key, or name/status/kind"
    )
    breakdown.add_argument("--limit", type=limit, default=50, help="groups at most (default 50)")
    breakdown.set_defaults(run=_runner(_breakdown))

    compare = commands.add_parser("compare", help="what the errors or slow spans have in common")
    _common(compare)
    _filters(compare)
    chosen = compare.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--errors", action="store_true", help="select the spans with errors")
    chosen.add_argument(
        "--origin-errors",
        action="store_true",
        help="select the errors where they began: error spans with no failed child",
    )
    chosen.add_argument(
        "--slower-than", type=positive_duration, help="select the spans slower than, e.g. 250ms"
    )
    compare.add_argument("--limit", type=limit, default=20, help="pairs at most (default 20)")
    compare.set_defaults(run=_runner(_compare))

    status = commands.add_parser(
        "status", help="what the local store holds: spans, time covered, evicted, size"
    )
    _common(status)
    status.set_defaults(run=_runner(_status))
    return traces


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        type=query_url,
        help=f"query API / Jaeger UI base URL (default: settings query_url or {DEFAULT_URL})",
    )


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service")
    parser.add_argument("--operation")
    # Where the window begins: how far back from its end, or a time. Both would contradict.
    begins = parser.add_mutually_exclusive_group()
    begins.add_argument(
        "--since",
        type=positive_duration,
        help=f"how far back from --end (or now), a Go duration (default {DEFAULT_SINCE})",
    )
    begins.add_argument(
        "--start",
        type=rfc3339_time,
        help="the window's start instead, RFC 3339 with its offset: 2026-12-07T14:05:00Z",
    )
    parser.add_argument("--end", type=rfc3339_time, help="the window's end, RFC 3339 (default now)")
    parser.add_argument(
        "--attr",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="span or resource attribute equals value (repeatable)",
    )


def _query_url(args: argparse.Namespace) -> str:
    """--url, else O11YKIT_QUERY_URL, else the store's default. A malformed variable is an
    error (ConfigError): asking the default address instead could read another store."""
    if args.url:
        return args.url.rstrip("/")
    from o11ykit.config import environment_setting

    return (environment_setting("query_url") or DEFAULT_URL).rstrip("/")


Command = Callable[[argparse.Namespace, JaegerQuery, Console], None]


def _runner(command: Command) -> Callable[[argparse.Namespace], int]:
    """Turns a command into `run(args) -> exit code`: a failed query is one readable line."""

    def run(args: argparse.Namespace) -> int:
        # markup=False: names and values come from spans, and "[/x]" in one is not markup.
        console = Console(
            file=sys.stdout, highlight=False, markup=False, emoji=False, width=_width()
        )
        try:
            command(args, JaegerQuery(_query_url(args)), console)
        except UnicodeEncodeError as exc:  # before ValueError, which it is: not a bad option
            encoding = getattr(sys.stdout, "encoding", None) or exc.encoding
            print(
                f"o11ykit traces: the output cannot hold {exc.object[exc.start : exc.end]!r} in"
                f" {encoding}: set PYTHONIOENCODING=utf-8",
                file=sys.stderr,
            )
            return 1
        except QueryError as exc:
            # No answer at all (nothing listens, or not HTTP): say how to name another address.
            # A trace not found (_show's NOT_FOUND) was an answer: no hint there.
            hint = "" if exc.status else "; --url (or O11YKIT_QUERY_URL) names another address"
            print(f"o11ykit traces: {exc}{hint}", file=sys.stderr)
            # A 400 is the server refusing a value the user gave (`--attr error=maybe`): the
            # same mistake as an option refused here, so the same status.
            return 2 if exc.status == 400 else 1
        except ValueError as exc:  # a bad --attr, window or pair of durations
            print(f"o11ykit traces: {exc}", file=sys.stderr)
            return 2
        return 0

    return run


def _width() -> int | None:
    """Rich's own choice on a terminal; piped or captured, wide enough not to cut trace ids."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return PIPED_WIDTH


class Window(NamedTuple):
    """The spans' start times a command asks about: start <= start time < end."""

    start: datetime
    end: datetime
    since: str | None  # the --since of a window that ends now; None for one given by times
    widen: str  # how to widen it, for a message that found nothing

    def words(self, preposition: str) -> str:
        """For a message: "in the last 15m" ("of" ...), or the window's times."""
        if self.since:
            return f"{preposition} the last {self.since}"
        start, end = (format_clock(datetime_ns(t)) for t in (self.start, self.end))
        return f"from {start} to {end} UTC"


def _window(args: argparse.Namespace) -> Window:
    """From --start, or --since back from --end, to --end (by default now); ValueError for
    a window no span could be in."""
    now = datetime.now(timezone.utc)
    end = args.end or now
    if args.start is not None:
        if args.start >= end:
            till = f"--end {args.end.isoformat()}" if args.end else f"now ({now.isoformat()})"
            raise ValueError(
                f"--start {args.start.isoformat()} is not before {till}: no span could be in it"
            )
        return Window(args.start, end, None, "move --start earlier or --end later")
    since = args.since or DEFAULT_SINCE
    # Datetimes count microseconds: a shorter --since is one, not an empty window.
    start = end - timedelta(microseconds=max(1, parse_duration(since) // 1000))
    if args.end is not None:
        return Window(start, end, None, "widen --since or move --end later")
    return Window(start, end, since, "widen --since")


def _attrs(args: argparse.Namespace) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in args.attr:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--attr {item!r}: expected KEY=VALUE, e.g. tenant.id=acme")
        if key in pairs:
            # Every pair must hold for one span: a key cannot equal two values.
            raise ValueError(f"--attr {key}: given twice ({pairs[key]!r} and {value!r})")
        pairs[key] = value  # as given: a value may begin or end with a space
    return pairs


def printable(value: object) -> str:
    """Text from a span, safe for a terminal: control characters (an escape sequence in a
    span name would clear the screen or retitle the window) shown as escapes."""
    return _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode(), str(value))


def _nothing_matched(
    args: argparse.Namespace, window: Window, client: JaegerQuery, console: Console
) -> None:
    """An empty answer, said with what to do about it: a service that never sent spans here
    (a typo, another store) is named beside those that did, else the window may be short."""
    if args.service:
        services = client.services()
        if args.service not in services and not _had_spans(client, args.service):
            known = ", ".join(services) if services else "none yet"
            console.print(
                printable(
                    f"No service named {args.service!r} has sent spans here (services: {known})."
                ),
                style="yellow",
            )
            return
        if args.operation:
            operations = sorted({o.name for o in client.operations(args.service)})
            if args.operation not in operations:
                console.print(
                    printable(
                        f"{args.service!r} has no operation named {args.operation!r}"
                        f" (operations: {_some(operations)})."
                    ),
                    style="yellow",
                )
                return
    console.print(
        f"Nothing matched {window.words('in')}: {window.widen} or drop a filter.", style="yellow"
    )
    held = _held_instead(client, window)
    if held:
        console.print(held, style="yellow")


def _had_spans(client: JaegerQuery, service: str) -> bool:
    """Whether `service` sent spans that are gone now: the store lists the operations of
    every service that ever sent one, though retention removed its spans."""
    try:
        return bool(client.operations(service))
    except QueryError:
        return False


class _Held(NamedTuple):
    """The start times of the spans the local store holds (None when it holds none), and
    how many spans retention removed."""

    first: int | None
    last: int | None
    evicted: int


def _held(client: JaegerQuery) -> _Held | None:
    """What the local store holds; None on Jaeger (no status to ask) or an answer with
    times that are not a store's: a hint is not worth an error."""
    try:
        status = client.status()
        oldest, newest = status["oldestSpanStart"], status["newestSpanStart"]
        times = (None, None) if oldest is None else (parse_time(oldest), parse_time(newest))
    except (QueryError, ValueError):
        return None
    return _Held(*times, evicted=status.get("evictedSpans") or 0)


def _held_instead(client: JaegerQuery, window: Window) -> str | None:
    """What the local store holds, when the window lies outside all of it: an incident
    asked about after retention removed its spans, or a time in the wrong zone. None when
    the window overlaps what is held, and on Jaeger."""
    held = _held(client)
    if held is None:
        return None
    if held.first is None or held.last is None:
        if held.evicted:
            return f"The store holds no spans; retention has removed {held.evicted:,}."
        return "The store holds no spans yet."
    if datetime_ns(window.start) <= held.last and datetime_ns(window.end) > held.first:
        return None
    removed = f"; retention has removed {held.evicted:,} older ones" if held.evicted else ""
    return (
        f"The store holds spans that started from {format_clock(held.first)}"
        f" to {format_clock(held.last)} UTC{removed}."
    )


def _removed(client: JaegerQuery) -> str:
    """For a trace not found: that retention removed spans, if it did (the trace may have
    been among them)."""
    held = _held(client)
    if held is None or not held.evicted:
        return ""
    if held.first is None:
        return f"; retention has removed {held.evicted:,} spans, and the store holds none now"
    return (
        f"; retention has removed {held.evicted:,} spans, the oldest first (the spans held"
        f" start at {format_clock(held.first)} UTC)"
    )


def _some(names: list[str], most: int = 12) -> str:
    """The first names, and how many more: a service may have hundreds of operations."""
    shown = ", ".join(names[:most]) if names else "none"
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _link(console: Console, url: str) -> None:
    # soft_wrap: a link must stay one line to be clickable and copyable.
    console.print(f"Jaeger UI: {url}", soft_wrap=True)


# --------------------------------------------------------------------------------------------
# services, search
# --------------------------------------------------------------------------------------------


def _services(args: argparse.Namespace, client: JaegerQuery, console: Console) -> None:
    names = client.services()
    gone = _services_removed(client, len(names))
    if not names and not gone:
        console.print("No services have sent spans yet.")
    for name in names:
        console.print(printable(name))
    if gone:
        console.print(gone, style="yellow")
    _link(console, f"{client.base_url}/search")


def _services_removed(client: JaegerQuery, listed: int) -> str | None:
    """The services that sent spans but hold none now, which the services list leaves out
    (it lists the spans' services): the local store's status counts every service that
    ever sent one. None when every service that sent spans is listed, and on Jaeger."""
    try:
        status = client.status()
    except (QueryError, ValueError):
        return None
    gone = status["services"] - listed
    if gone <= 0:
        return None
    evicted = status.get("evictedSpans") or 0
    if listed:
        return f"{gone} more service(s) sent spans that retention has removed since."
    if evicted:
        return (
            f"No service holds spans now: retention has removed all {evicted:,} spans the"
            f" {gone} service(s) sent."
        )
    return f"No service holds spans now, though {gone} service(s) sent some."


def _status(args: argparse.Namespace, client: JaegerQuery, console: Console) -> None:
    console.print(_status_table(client.status(), client.base_url))


def _status_table(answer: dict[str, Any], url: str) -> Table:
    table = Table(
        title=Text(printable(f"the store at {url}")), title_justify="left", show_header=False
    )
    table.add_column()
    table.add_column(overflow="fold")
    rows = [
        ("spans", f"{answer['spans']:,}"),
        ("services", f"{answer['services']:,}"),
        ("oldest span start", answer["oldestSpanStart"] or "-"),
        ("newest span start", answer["newestSpanStart"] or "-"),
        ("evicted by retention", f"{answer['evictedSpans']:,}"),
        ("dropped by the writer", f"{answer['droppedSpans']:,}"),
        ("database", _size(answer["databaseBytes"])),
        ("write-ahead log", _size(answer["walBytes"])),
    ]
    for name, value in rows:
        table.add_row(name, printable(str(value)))
    return table


def _size(count: int) -> str:
    """Bytes in the unit a reader takes in at a glance: 812 B, 3.4 MB, 1.2 GB."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def _search(args: argparse.Namespace, client: JaegerQuery, console: Console) -> None:
    low, high = args.min_duration, args.max_duration
    if low and high and parse_duration(low) > parse_duration(high):
        raise ValueError(
            f"--min-duration {low} is longer than --max-duration {high}: no span could match"
        )
    window = _window(args)
    tags = _attrs(args)
    traces = client.find_traces(
        args.service,
        args.operation,
        start=window.start,
        end=window.end,
        attributes=tags,
        duration_min=args.min_duration,
        duration_max=args.max_duration,
        search_depth=args.limit,
    )
    traces.sort(key=lambda t: t.start_ns, reverse=True)
    if traces and console.width < TABLE_WIDTH:
        console.print(_traces_lines(traces[: args.limit]))
    elif traces:
        console.print(_traces_table(traces[: args.limit]))
    else:
        _nothing_matched(args, window, client, console)
    link = ui_search_link(
        client.base_url,
        args.service,
        args.operation,
        tags,
        window.start,
        window.end,
        min_duration=args.min_duration,
        max_duration=args.max_duration,
        limit=args.limit,
    )
    _link(console, link)


def _traces_lines(traces: list[Trace]) -> Text:
    """The search's answer on a narrow terminal, two lines a trace: the table's columns
    do not fit in 80 (the trace id alone takes 32), and Rich would empty the root's."""
    lines = Text(f"{len(traces)} trace(s)\n")
    for trace in traces:
        root = trace.root
        lines.append(f"{trace.trace_id}  {format_clock(trace.start_ns)}  ")
        lines.append(f"{trace.duration_ms:.2f} ms\n")
        lines.append(f"  {printable(f'{root.service}: {root.name}')}  {len(trace.spans)} spans")
        if trace.errors:
            lines.append(f"  {ERROR_MARK} {trace.errors} error(s)", style="red")
        lines.append("\n")
    lines.rstrip()
    return lines


def _traces_table(traces: list[Trace]) -> Table:
    table = Table(title=f"{len(traces)} trace(s)", title_justify="left")
    table.add_column("trace id", no_wrap=True)
    table.add_column("root", overflow="fold")
    table.add_column("start (UTC)", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("spans", justify="right")
    table.add_column("errors", justify="right")
    for trace in traces:
        root = trace.root
        errors = Text(f"{ERROR_MARK} {trace.errors}", style="red") if trace.errors else Text("0")
        table.add_row(
            trace.trace_id,
            printable(f"{root.service}: {root.name}"),
            format_clock(trace.start_ns),
            f"{trace.duration_ms:.2f} ms",
            str(len(trace.spans)),
            errors,
        )
    return table


# --------------------------------------------------------------------------------------------
# show: the waterfall
# --------------------------------------------------------------------------------------------


def _show(args: argparse.Namespace, client: JaegerQuery, console: Console) -> None:
    trace = client.get_trace(args.trace_id)
    if trace is None:
        raise QueryError(
            f"trace {args.trace_id} was not found at {client.base_url}{_removed(client)}",
            status=NOT_FOUND,
        )
    console.print(
        f"Trace {trace.trace_id}: {len(trace.spans)} spans, {trace.duration_ms:.2f} ms, "
        f"{trace.errors} error(s)"
    )
    bar_width = BAR_WIDTH if console.width >= TABLE_WIDTH else NARROW_BAR_WIDTH
    console.print(waterfall(trace, with_attributes=args.attrs, bar_width=bar_width))
    _link(console, ui_trace_link(client.base_url, trace.trace_id))


def bar(span: SpanView, trace: Trace, width: int = BAR_WIDTH) -> str:
    """The span's place in the trace: spaces to its start, then at least one block."""
    total = max(trace.end_ns - trace.start_ns, 1)
    offset = min(width - 1, (span.start_ns - trace.start_ns) * width // total)
    length = max(1, round((span.end_ns - span.start_ns) * width / total))
    return (" " * offset + "█" * min(length, width - offset)).ljust(width)


def error_lines(span: SpanView) -> list[str]:
    """What a failed span says of its error: its status message, and the type and message
    of each exception it recorded (an SDK's record_exception leaves the status message
    empty, so without these the terminal showed no reason where the Jaeger UI does)."""
    lines = [span.status_message] if span.status_message else []
    for event in span.events:
        if event.name != "exception":
            continue
        said = [
            str(event.attributes[key])
            for key in ("exception.type", "exception.message")
            if event.attributes.get(key) not in (None, "")
        ]
        text = ": ".join(said)
        if text and text not in lines:
            lines.append(text)
    return lines


def waterfall(
    trace: Trace,
    *,
    with_attributes: bool = False,
    most: int | None = None,
    bar_width: int = BAR_WIDTH,
    more_spans: Callable[[int], str] = "... and {} more spans".format,
) -> Table:
    """The trace's spans in tree order against its timeline; `most`: draw that many spans
    and say how many more there are, in `more_spans`' words (a lab's in its language)."""
    table = Table(box=None, pad_edge=False, show_header=True)
    # Folded, not cut or widened: a long error message or attribute value must neither lose
    # its end nor push the timeline and the durations off a narrow terminal.
    table.add_column("span", overflow="fold")
    table.add_column("timeline", no_wrap=True, width=bar_width)
    table.add_column("ms", justify="right", no_wrap=True, min_width=8)
    previous_service = None
    ordered = trace.in_tree_order()
    for depth, span in ordered[:most]:
        failed = span.status == "error"
        style = "red" if failed else ""
        label = span.name if span.service == previous_service else f"{span.service}: {span.name}"
        previous_service = span.service
        mark = f" {ERROR_MARK}" if failed else ""
        table.add_row(
            Text("  " * depth + printable(label) + mark, style=style),
            Text(bar(span, trace, bar_width), style="red" if failed else "cyan"),
            Text(f"{span.duration_ms:.2f}", style=style),
        )
        if failed:
            for line in error_lines(span):
                table.add_row(Text("  " * (depth + 2) + printable(line), style="red"), "", "")
        if with_attributes:
            for key, value in sorted(span.attributes.items()):
                # As a search takes it (true, not True), so it can be pasted into --attr.
                pair = printable(f"{key}={search_text(value)}")
                table.add_row(Text("  " * (depth + 2) + pair, style="dim"), "", "")
    if most is not None and len(ordered) > most:
        table.add_row(Text(more_spans(len(ordered) - most), style="dim"), "", "")
    return table


# --------------------------------------------------------------------------------------------
# breakdown, compare
# --------------------------------------------------------------------------------------------


def _breakdown(args: argparse.Namespace, client: JaegerQuery, console: Console) -> None:
    window = _window(args)
    tags = _attrs(args)
    answer = client.breakdown(
        args.by,
        start=window.start,
        end=window.end,
        service=args.service,
        operation=args.operation,
        where=tags,
        limit=args.limit,
    )
    if answer["total"]:
        console.print(breakdown_table(answer))
    else:
        _nothing_matched(args, window, client, console)
    if answer.get("note"):
        console.print(printable(answer["note"]), style="yellow")
    link = ui_search_link(
        client.base_url, args.service, args.operation, tags, window.start, window.end
    )
    _link(console, link)


def breakdown_groups(answer: dict[str, Any]) -> int:
    """Every group of the breakdown, shown or not: how many distinct values the key had
    (the "(none)" group of spans without it among them), read off the title rather than
    counted row by row past the limit."""
    return len(answer["groups"]) + int(answer.get("moreGroups") or 0)


def breakdown_table(answer: dict[str, Any], rows: int | None = None) -> Table:
    """The breakdown's table; `rows`: show the first groups alone (the title still counts
    them all)."""
    # Text, not str, for whatever came from spans: a table built here may be printed by a
    # console that reads markup (the labs'), where "[/x]" in a value would be taken as a tag.
    by, groups = answer["groupBy"], breakdown_groups(answer)
    # Cut short by the span-bytes cap: the count is of the newest spans, not the window's.
    spans = "spans (the newest; more matched)" if answer.get("truncated") else "spans"
    title = printable(
        f"{answer['total']} {spans} by {by} in {groups} group(s) ({answer['source']})"
    )
    # As wide as its title, which then reads on one line where the terminal allows.
    table = Table(title=Text(title), title_justify="left", min_width=cell_len(title))
    table.add_column(Text(printable(by)), overflow="fold")
    for heading in ("count", "errors", "error %", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(heading, justify="right", no_wrap=True)
    for group in answer["groups"][:rows]:
        value = Text("(none)" if group["value"] is None else printable(group["value"]))
        errors = Text(str(group["errors"]), style="red" if group["errors"] else "")
        table.add_row(
            value,
            str(group["count"]),
            errors,
            f"{100 * group['errorRate']:.1f}",
            f"{group['p50Ms']:.2f}",
            f"{group['p95Ms']:.2f}",
            f"{group['p99Ms']:.2f}",
        )
    if answer.get("moreGroups"):
        table.caption = f"{answer['moreGroups']} smaller group(s) not shown"
    return table


def _compare(args: argparse.Namespace, client: JaegerQuery, console: Console) -> None:
    window = _window(args)
    tags = _attrs(args)
    if args.errors or args.origin_errors:
        selection = "origin-errors" if args.origin_errors else "errors"
        ui_tags, min_duration = {**tags, "error": "true"}, None
    else:
        selection, ui_tags, min_duration = f"slower:{args.slower_than}", tags, args.slower_than
    answer = client.compare(
        selection,
        start=window.start,
        end=window.end,
        service=args.service,
        operation=args.operation,
        where=tags,
        limit=args.limit,
    )
    if answer["selectionCount"]:
        console.print(_compare_table(answer))
    elif answer["baselineCount"]:
        # Nothing to compare: say so rather than print an empty table.
        what, hint = (
            (f"is {answer['selection']}", "lower --slower-than")
            if args.slower_than
            else ("failed", window.widen)
        )
        console.print(
            f"None of the {answer['baselineCount']} spans {window.words('of')} {what}: {hint}.",
            style="yellow",
        )
    else:
        _nothing_matched(args, window, client, console)
    if answer.get("note"):
        console.print(printable(answer["note"]), style="yellow")
    link = ui_search_link(
        client.base_url,
        args.service,
        args.operation,
        ui_tags,
        window.start,
        window.end,
        min_duration=min_duration,
    )
    _link(console, link)


def _compare_table(answer: dict[str, Any]) -> Table:
    title = (
        f"{answer['selection']}: {answer['selectionCount']} spans "
        f"against {answer['baselineCount']} others"
    )
    table = Table(title=Text(printable(title)), title_justify="left")
    table.add_column("attribute", overflow="fold")
    table.add_column("value", overflow="fold")
    for heading in ("in selection", "in baseline", "difference"):
        table.add_column(heading, justify="right", no_wrap=True)
    for pair in answer["pairs"]:
        table.add_row(
            Text(printable(pair["key"])),
            Text("(none)" if pair["value"] is None else printable(pair["value"])),
            f"{pair['selectionPct']:.1f}% ({pair['selectionCount']})",
            f"{pair['baselinePct']:.1f}% ({pair['baselineCount']})",
            f"+{pair['differencePct']:.1f} pts",
        )
    if not answer["pairs"]:
        table.caption = "nothing is more common in the selection than in the baseline"
    return table
