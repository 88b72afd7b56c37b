"""One description of a question about traces, rendered for every backend.

A lab tells the learner "look at X" and its solver answers the same question; both come
from one QuerySpec, so the command, the links and the solver's numbers cannot drift apart.
This module holds the spec and its local forms: the `o11ykit traces` command, the Jaeger UI
link, and `run_local` for solvers. Honeycomb's forms are in honeycomb_links.

Where a backend cannot say what the spec asks, its renderer raises NotExpressible naming
the closest form, rather than render a link or command that answers another question.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from o11ykit.backends.jaeger_query import JaegerQuery, Trace, ui_search_link
from o11ykit.backends.local import DEFAULT_QUERY
from o11ykit.settings_parsers import without_secrets
from o11ykit.timeformats import format_duration, format_second

# Jaeger's tag for a span whose status is ERROR (the local store's searches and breakdowns
# read it the same way: o11ykit.store.queries.ERROR_TAG).
ERROR_TAG = "error"

WHERE_OPS = ("=", "!=", ">", "<", "exists")
# Calculations that need a column, as Honeycomb names them; COUNT needs none.
COLUMN_OPS = ("P50", "P90", "P95", "P99", "AVG", "MAX", "MIN", "SUM", "HEATMAP", "COUNT_DISTINCT")
ORDER_DIRECTIONS = ("ascending", "descending")
# Span columns (not attributes) that group_by may name, in the local store's spelling.
SPAN_COLUMNS = ("name", "service.name", "status", "kind")
# The local store answers at most this many groups; run_local asks for them all when it
# must reorder, so the groups it keeps are the top ones by the spec's order, not by count.
MAX_GROUPS = 1000
DEFAULT_SEARCH_LIMIT = 20  # `o11ykit traces search` default
DEFAULT_BREAKDOWN_LIMIT = 50  # `o11ykit traces breakdown` default
_CALCULATION = re.compile(r"([A-Z_0-9]+)\((.+)\)")
# Columns of a local breakdown group that a spec's calculation or order can name.
_GROUP_FIELDS = {
    "COUNT": "count",
    "P50(duration_ms)": "p50Ms",
    "P95(duration_ms)": "p95Ms",
    "P99(duration_ms)": "p99Ms",
}


class NotExpressible(ValueError):
    """A backend's form cannot say what the spec asks; the message names the closest form."""


def parse_calculation(text: str) -> tuple[str, str | None]:
    """A calculation as (op, column): P95(duration_ms) -> ("P95", "duration_ms"), COUNT -> None."""
    if text == "COUNT":
        return "COUNT", None
    match = _CALCULATION.fullmatch(text)
    if not match or match.group(1) not in COLUMN_OPS:
        raise ValueError(
            f"calculation {text!r} is not understood; accepted: COUNT, or one of "
            f"{', '.join(COLUMN_OPS)} of a column, e.g. P95(duration_ms), "
            "COUNT_DISTINCT(enduser.id)"
        )
    return match.group(1), match.group(2).strip()


def _text(value: Any) -> str:
    # Lab files may give 500 or true; the store compares attribute values as text.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class QuerySpec:
    """A question about spans: which ones (filters), how grouped, what computed, over when.

    Lists are accepted wherever tuples are (lab content is data) and stored as tuples.
    `where` holds (key, op, value) with ops "=", "!=", ">", "<", "exists" on span or
    resource attributes; span columns have their own fields (service, operation,
    errors_only, min_duration_ms). `order_by` holds (calculation or group_by key,
    "ascending" | "descending"). `title` and `purpose` are shown to the learner. The window
    ends now (or at the `now` a renderer is given) and begins `since_s` before, or at
    `start` when that is set (timezone-aware): a lab's look that reads from the lab's start.
    """

    service: str | None = None
    operation: str | None = None
    where: tuple[tuple[str, str, str], ...] = ()
    group_by: tuple[str, ...] = ()
    calculate: tuple[str, ...] = ()
    errors_only: bool = False
    min_duration_ms: float | None = None
    since_s: int = 900
    order_by: tuple[tuple[str, str], ...] = ()
    limit: int | None = None
    title: str = ""
    purpose: str = ""
    start: datetime | None = None

    def __post_init__(self) -> None:
        where = tuple(_condition(item) for item in self.where)
        object.__setattr__(self, "where", where)
        object.__setattr__(self, "group_by", tuple(self.group_by))
        object.__setattr__(self, "calculate", tuple(self.calculate))
        object.__setattr__(self, "order_by", tuple(tuple(item) for item in self.order_by))
        self._check()

    @property
    def calculations(self) -> tuple[str, ...]:
        """What is computed: the spec's calculations, or COUNT (Honeycomb's default too)."""
        return self.calculate or ("COUNT",)

    def _check(self) -> None:
        for name in ("service", "operation"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a non-empty string or None, not {value!r}")
        if not _whole(self.since_s) or self.since_s <= 0:
            raise ValueError(f"since_s must be a whole number of seconds > 0, not {self.since_s!r}")
        if self.start is not None and (
            not isinstance(self.start, datetime) or self.start.tzinfo is None
        ):
            raise ValueError(f"start must be a timezone-aware datetime or None, not {self.start!r}")
        if self.limit is not None and not (_whole(self.limit) and 1 <= self.limit <= MAX_GROUPS):
            raise ValueError(f"limit must be 1 to {MAX_GROUPS} or None, not {self.limit!r}")
        if self.min_duration_ms is not None and not self.min_duration_ms >= 0:
            raise ValueError(f"min_duration_ms must be >= 0 or None, not {self.min_duration_ms!r}")
        for key in self.group_by:
            if not isinstance(key, str) or not key:
                raise ValueError(f"group_by keys must be non-empty strings, not {key!r}")
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError(f"group_by names a key twice: {self.group_by}")
        for calculation in self.calculate:
            parse_calculation(calculation)
        terms = set(self.calculations) | set(self.group_by)
        for item in self.order_by:
            if len(item) != 2 or item[1] not in ORDER_DIRECTIONS:
                raise ValueError(
                    f"order_by item {item!r}: expected (term, 'ascending' or 'descending')"
                )
            if item[0] not in terms:
                # Honeycomb's rule too: each order term must be calculated or grouped by.
                raise ValueError(
                    f"order_by {item[0]!r} is neither calculated nor grouped by; "
                    f"choose one of {', '.join(sorted(terms))}"
                )


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _condition(item: Sequence[Any]) -> tuple[str, str, str]:
    if isinstance(item, str) or len(item) not in (2, 3):
        raise ValueError(
            f"where item {item!r}: expected (key, op, value), e.g. ('tenant.id', '=', 'acme')"
        )
    key, op = item[0], item[1]
    value = _text(item[2]) if len(item) == 3 else ""
    if not isinstance(key, str) or not key:
        raise ValueError(f"where item {item!r}: the key must be a non-empty string")
    if op not in WHERE_OPS:
        raise ValueError(f"where item {item!r}: op {op!r} is not one of {', '.join(WHERE_OPS)}")
    if op != "exists" and len(item) != 3:
        raise ValueError(f"where item {item!r}: op {op!r} needs a value")
    if key in SPAN_COLUMNS:
        raise ValueError(
            f"where item {item!r}: {key} is a span column, not an attribute; use the spec's "
            "service, operation or errors_only fields, which every backend can express"
        )
    return key, op, value


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


def time_window(spec: QuerySpec, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[now - since_s, now), or [start, now): the explicit window the Jaeger API v3 always
    wants."""
    end = now or datetime.now(timezone.utc)
    if spec.start is not None:
        return min(spec.start, end), end
    return end - timedelta(seconds=spec.since_s), end


def _window_args(spec: QuerySpec) -> list[str]:
    """`--since`, or `--start` at the spec's start: a command typed later still reads from
    there, where `--since` would slide past it."""
    if spec.start is not None:
        # To the second it falls in, as a learner reads it: the window still holds the start.
        return ["--start", format_second(spec.start)]
    return ["--since", format_duration(spec.since_s * 1_000_000_000)]


def min_duration_text(spec: QuerySpec) -> str | None:
    """min_duration_ms as a Go duration ("250ms"), as the CLI, the API and the Jaeger UI take it."""
    if spec.min_duration_ms is None:
        return None
    return format_duration(round(spec.min_duration_ms * 1_000_000))


def _equalities(spec: QuerySpec, form: str) -> dict[str, str]:
    """The where conditions as key -> value; Jaeger's tags and the CLI's --attr know only '='."""
    pairs = {}
    for key, op, value in spec.where:
        if op != "=":
            condition = f"{key} {op} {value}".strip()
            raise NotExpressible(
                f"{form} matches attributes by equality only; '{condition}' has no such form "
                "(the Honeycomb link expresses it)"
            )
        pairs[key] = value
    return pairs


def _single_group(spec: QuerySpec, form: str) -> str:
    if len(spec.group_by) != 1:
        raise NotExpressible(
            f"{form} groups by one key; the spec groups by {', '.join(spec.group_by)} "
            "(break it into one spec per key, or use the Honeycomb link)"
        )
    return spec.group_by[0]


def _no_duration_in_breakdown(spec: QuerySpec, form: str) -> None:
    if spec.min_duration_ms is not None:
        raise NotExpressible(
            f"{form} has no duration filter; drop min_duration_ms and order by "
            "P95(duration_ms), or use `o11ykit traces compare --slower-than` for what slow "
            "spans have in common"
        )


def _tags(spec: QuerySpec, form: str) -> dict[str, str]:
    """The where equalities, with errors_only as Jaeger's tag for the status ERROR, which
    the local store, the Jaeger UI and (as a filter) Honeycomb all read: the learner sees
    one way to ask for errors everywhere."""
    return {**_equalities(spec, form), **({ERROR_TAG: "true"} if spec.errors_only else {})}


# --------------------------------------------------------------------------------------------
# The `o11ykit traces` command
# --------------------------------------------------------------------------------------------


def local_argv(spec: QuerySpec) -> list[str]:
    """The arguments after `o11ykit`: `traces search` without group_by, `traces breakdown` with.

    Calculations and order_by do not change the command: a search lists the matching traces
    newest first, a breakdown always shows count, errors and p50/p95/p99 per group, largest
    group first (run_local reorders as the spec says).
    """
    if spec.group_by:
        form = "o11ykit traces breakdown"
        key = _single_group(spec, form)
        _no_duration_in_breakdown(spec, form)
        argv = ["traces", "breakdown", "--by", key, *_filter_args(spec, form)]
    else:
        form = "o11ykit traces search"
        argv = ["traces", "search", *_filter_args(spec, form)]
        duration = min_duration_text(spec)
        if duration:
            argv += ["--min-duration", duration]
    if spec.limit is not None:
        argv += ["--limit", str(spec.limit)]
    return argv


def _filter_args(spec: QuerySpec, form: str) -> list[str]:
    argv = []
    if spec.service:
        argv += ["--service", spec.service]
    if spec.operation:
        argv += ["--operation", spec.operation]
    for key, value in _tags(spec, form).items():
        argv += ["--attr", f"{key}={value}"]
    return [*argv, *_window_args(spec)]


def local_command(spec: QuerySpec, query_url: str | None = None) -> str:
    """The exact command line to type, quoted for a POSIX shell; `query_url`: the store
    that answers it (a stack on free ports), named unless it is the default."""
    return shlex.join(["o11ykit", *local_argv(spec), *url_args(query_url)])


def url_args(query_url: str | None) -> list[str]:
    """`--url` for an `o11ykit traces` command read elsewhere than the default address:
    without it, the command pasted queries 127.0.0.1:16686, and maybe another system. A
    password in the URL is not printed (the learner adds their own)."""
    if not query_url or query_url.rstrip("/") == DEFAULT_QUERY:
        return []
    return ["--url", without_secrets(query_url.rstrip("/"))]


# --------------------------------------------------------------------------------------------
# The Jaeger UI link
# --------------------------------------------------------------------------------------------


def jaeger_tags(spec: QuerySpec) -> dict[str, str]:
    """The search's tags: the where equalities, and Jaeger's error tag for errors_only."""
    return _tags(spec, "Jaeger's search")


def jaeger_link(spec: QuerySpec, ui_base: str, now: datetime | None = None) -> str:
    """The Jaeger UI search for the spec's spans over its explicit window.

    Jaeger has no grouping or calculations: the link shows the matching traces, which is
    what a learner looks at there; the numbers come from the local breakdown or Honeycomb.
    """
    start, end = time_window(spec, now)
    return ui_search_link(
        ui_base,
        spec.service,
        spec.operation,
        jaeger_tags(spec) or None,
        start,
        end,
        min_duration=min_duration_text(spec),
        limit=spec.limit or DEFAULT_SEARCH_LIMIT,
    )


# --------------------------------------------------------------------------------------------
# The solver's side: the same question through the Jaeger API v3 client
# --------------------------------------------------------------------------------------------


def to_jaeger_params(spec: QuerySpec, now: datetime | None = None) -> dict[str, Any]:
    """Keyword arguments of JaegerQuery.find_traces for a spec without group_by."""
    form = "the Jaeger API v3 search"
    start, end = time_window(spec, now)
    return {
        "service": spec.service,
        "operation": spec.operation,
        "start": start,
        "end": end,
        "attributes": _tags(spec, form),
        "duration_min": min_duration_text(spec),
        "search_depth": spec.limit or DEFAULT_SEARCH_LIMIT,
    }


def to_breakdown_params(spec: QuerySpec, now: datetime | None = None) -> dict[str, Any]:
    """Keyword arguments of JaegerQuery.breakdown (the local store's) for a spec with group_by."""
    form = "the local store's breakdown"
    key = _single_group(spec, form)
    _no_duration_in_breakdown(spec, form)
    where = _tags(spec, form)
    start, end = time_window(spec, now)
    return {
        "group_by": key,
        "start": start,
        "end": end,
        "service": spec.service,
        "operation": spec.operation,
        "where": where,
        "limit": spec.limit or DEFAULT_BREAKDOWN_LIMIT,
    }


def run_local(spec: QuerySpec, client: JaegerQuery, now: datetime | None = None) -> dict[str, Any]:
    """Answer the spec from the local store: what a lab's solver compares the learner with.

    With group_by: `{"kind": "breakdown", "command", ...}` plus the store's breakdown answer
    (docs/store-api.md), groups in the spec's order. Without: `{"kind": "search", "command",
    "count", "traces"}`, newest trace first.
    """
    if spec.group_by:
        return _run_breakdown(spec, client, now)
    traces = client.find_traces(**to_jaeger_params(spec, now))
    traces.sort(key=lambda t: t.start_ns, reverse=True)
    shown = traces[: spec.limit or DEFAULT_SEARCH_LIMIT]
    return {
        "kind": "search",
        "command": local_command(spec, client.base_url),
        "count": len(shown),
        "traces": [_trace_summary(trace) for trace in shown],
    }


def _run_breakdown(spec: QuerySpec, client: JaegerQuery, now: datetime | None) -> dict[str, Any]:
    params = to_breakdown_params(spec, now)
    sort_key = _group_order(spec)
    if sort_key:
        params["limit"] = MAX_GROUPS
    answer = client.breakdown(**params)
    groups = list(answer["groups"])
    if sort_key:
        key, descending = sort_key
        groups.sort(key=key, reverse=descending)
        kept = groups[: spec.limit or DEFAULT_BREAKDOWN_LIMIT]
        answer["moreGroups"] = answer.get("moreGroups", 0) + len(groups) - len(kept)
        groups = kept
    command = local_command(spec, client.base_url)
    return {"kind": "breakdown", "command": command, **answer, "groups": groups}


GroupKey = Callable[[dict[str, Any]], Any]


def _group_order(spec: QuerySpec) -> tuple[GroupKey, bool] | None:
    """How to sort the store's groups as the spec's first order term says; None: by count."""
    if not spec.order_by:
        return None
    term, direction = spec.order_by[0]
    descending = direction == "descending"
    if term == "COUNT" and descending:
        return None  # the store's own order
    if term in spec.group_by:
        # Groups without the key ("(none)") go last either way round.
        def by_value(group: dict[str, Any]) -> tuple[bool, str]:
            present = group["value"] is not None
            return (present if descending else not present), group["value"] or ""

        return by_value, descending
    field = _GROUP_FIELDS.get(term)
    if field is None:
        raise NotExpressible(
            f"the local store's breakdown reports count, errors and p50/p95/p99 of duration; "
            f"it cannot order by {term} (the Honeycomb link can)"
        )
    return (lambda group: group[field]), descending


def _trace_summary(trace: Trace) -> dict[str, Any]:
    root = trace.root
    return {
        "traceId": trace.trace_id,
        "root": f"{root.service}: {root.name}",
        "startTimeUnixNano": trace.start_ns,
        "durationMs": trace.duration_ms,
        "spans": len(trace.spans),
        "errors": trace.errors,
    }
