"""The store's own pages at Jaeger UI's paths, so the "Jaeger UI" links o11ykit prints open.

`o11ykit traces`, `o11ykit doctor` and the local backend's trace_link print links made by
jaeger_query.ui_search_link / ui_trace_link. Against Jaeger they open its UI; against the
local store they open these server-rendered pages: `/`, `/search`, `/trace/<id>`. Span names
and attributes come from any sender, so every value is escaped and the pages run no script.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from o11ykit.attribute_text import search_text
from o11ykit.backends.jaeger_query import SpanView, Trace, parse_traces
from o11ykit.store import otlp_json
from o11ykit.store.queries import Queries, QueryError, TraceQuery
from o11ykit.store.search_params import trace_query
from o11ykit.timeformats import clamp_ns, format_clock, format_time, parse_duration

CONTENT_TYPE = "text/html; charset=utf-8"
HEADERS = {
    # Even with every value escaped, a page showing foreign data should be unable to run any.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}
ERROR_MARK = "✗"
DEFAULT_LOOKBACK = "1h"
# Jaeger UI's search parameters -> the API v3 parameters trace_query reads.
_API_NAMES = {
    "service": "query.serviceName",
    "operation": "query.operationName",
    "tags": "query.attributes",
    "minDuration": "query.durationMin",
    "maxDuration": "query.durationMax",
    "limit": "query.searchDepth",
}
# The window's API names, which the page's `start` and `end` (lookback=custom) stand for;
# from any other lookback the window cannot be empty or reversed.
_WINDOW_NAMES = {"query.startTimeMin": "start", "query.startTimeMax": "end"}
# Jaeger UI's lookbacks beyond Go durations: whole days and weeks ("2d", "1w").
_DAYS_OR_WEEKS = re.compile(r"([1-9]\d{0,3})([dw])")
_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222} .note{color:#666}"
    " table{border-collapse:collapse;width:100%} .waterfall{table-layout:fixed}"
    " th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #eee;vertical-align:top}"
    " .num{text-align:right;white-space:nowrap} .error{color:#b00020;font-weight:bold}"
    " .track{background:#f2f2f2;height:14px} .bar{background:#3b7dd8;height:14px;min-width:2px}"
    " .failed .bar{background:#b00020} details table{width:auto;font-size:12px}"
    " details td,code{word-break:break-all} form input{width:9em}"
)


def is_page(path: str) -> bool:
    return path in ("/", "/search") or path.startswith("/trace/")


def render(path: str, params: Mapping[str, str], queries: Queries) -> tuple[int, bytes]:
    """(HTTP status, UTF-8 HTML) of the page at `path`; a bad parameter is a 400 page."""
    try:
        if path == "/":
            status, title, body = 200, "Services", _services(queries)
        elif path == "/search":
            status, title, body = 200, "Search", _search(params, queries)
        else:
            status, title, body = _trace(path.removeprefix("/trace/"), queries)
    except QueryError as exc:  # the search form again, to correct what was refused
        form = _form(params) if path == "/search" else ""
        status, title, body = 400, "Bad request", f'<p class="error">{_e(exc)}</p>{form}'
    return status, _document(title, body).encode()


def search_query(params: Mapping[str, str], now_ns: int) -> TraceQuery:
    """Jaeger UI's search parameters -> the query GET /api/v3/traces would run."""
    start_ns, end_ns = _window(params, now_ns)
    api = {_API_NAMES[name]: value for name, value in params.items() if name in _API_NAMES}
    api.update(
        {"query.startTimeMin": format_time(start_ns), "query.startTimeMax": format_time(end_ns)}
    )
    try:
        return trace_query(api)
    except QueryError as exc:
        raise QueryError(_ui_names(str(exc))) from None


def _ui_names(message: str) -> str:
    """trace_query's message starts with the API's parameter name; a page names its own."""
    for ui_name, api_name in _API_NAMES.items():
        if message.startswith(api_name):
            return ui_name + message.removeprefix(api_name)
    if message.startswith(tuple(_WINDOW_NAMES)):  # "X must be before Y": both are names
        for api_name, ui_name in _WINDOW_NAMES.items():
            message = message.replace(api_name, ui_name)
    return message


def _window(params: Mapping[str, str], now_ns: int) -> tuple[int, int]:
    lookback = params.get("lookback") or DEFAULT_LOOKBACK
    if lookback == "custom":  # as in Jaeger UI, start and end count only with this
        return _microseconds(params, "start"), _microseconds(params, "end")
    duration = lookback
    if days_or_weeks := _DAYS_OR_WEEKS.fullmatch(lookback):
        duration = f"{int(days_or_weeks[1]) * (168 if days_or_weeks[2] == 'w' else 24)}h"
    try:
        span_ns = parse_duration(duration)
    except ValueError:
        span_ns = 0
    if span_ns <= 0:
        raise QueryError(f"lookback must be custom or a span like 15m, 1h, 2d, not {lookback!r}")
    return now_ns - span_ns, now_ns


def _microseconds(params: Mapping[str, str], name: str) -> int:
    text = params.get(name, "")
    if not text.isascii() or not text.isdigit():
        raise QueryError(f"{name} must be Unix microseconds (lookback=custom), not {text[:50]!r}")
    return clamp_ns(int(text) * 1000)


# -- pages ------------------------------------------------------------------------------------


def _services(queries: Queries) -> str:
    names = queries.services()
    items = "".join(f'<li><a href="{_search_href(service=n)}">{_e(n)}</a></li>' for n in names)
    return (
        '<p class="note">The local o11ykit store\'s own pages. The links o11ykit prints have'
        " Jaeger UI's paths: with the Jaeger backend they open Jaeger's UI instead.</p>"
        + (f"<ul>{items}</ul>" if names else f"<p>{_no_services(queries)}</p>")
    )


def _no_services(queries: Queries) -> str:
    # The operations table keeps every service that sent spans, whatever retention removed.
    (sent,) = queries.connection.execute(
        "SELECT count(DISTINCT service) FROM operations"
    ).fetchone()
    if not sent:
        return "No services have sent spans yet."
    return (
        f"No service holds spans now: retention has removed the spans the {sent} service(s) sent."
    )


def _search(params: Mapping[str, str], queries: Queries) -> str:
    query = search_query(params, time.time_ns())
    traces = parse_traces(otlp_json.result(queries.find_traces(query)))
    traces.sort(key=lambda t: t.start_ns, reverse=True)
    rows = "".join(
        _row(
            format_clock(t.start_ns),
            f'<a href="/trace/{_e(t.trace_id)}">{_e(t.root.service)}: {_e(t.root.name)}</a>',
            len(t.spans),
            f"{t.duration_ms:.2f} ms",
            _errors(t.errors),
            f'<a href="/trace/{_e(t.trace_id)}"><code>{_e(t.trace_id)}</code></a>',
        )
        for t in traces
    )
    heading = _row("start (UTC)", "root", "spans", "duration", "errors", "trace id", cell="th")
    window = f"{format_clock(query.start_min_ns)} to {format_clock(query.start_max_ns)} UTC"
    return (
        f"{_form(params)}<p>{len(traces)} trace(s), {_e(window)}</p><table>{heading}{rows}</table>"
    )


def _form(params: Mapping[str, str]) -> str:
    """The same search, editable; a plain GET form, so it needs no script."""
    fields = [*_API_NAMES, "lookback"]
    if params.get("lookback") == "custom":
        fields += ["start", "end"]
    inputs = "".join(
        f'<label>{name} <input name="{name}" value="{_e(params.get(name, ""))}"></label> '
        for name in fields
    )
    return f'<form method="get" action="/search">{inputs}<button>Search</button></form>'


def _trace(trace_id: str, queries: Queries) -> tuple[int, str, str]:
    found = queries.get_trace(trace_id)  # a malformed id raises QueryError: 400
    if found is None:
        return 404, "Trace not found", f"<p>No trace {_e(trace_id)} in this store.</p>"
    trace = parse_traces(otlp_json.result(found))[0]
    summary = (
        f"{len(trace.spans)} spans, {trace.duration_ms:.2f} ms, {_errors(trace.errors)} error(s),"
        f" started {_e(format_clock(trace.start_ns))} UTC ·"
        f' <a href="{_search_href(service=trace.root.service)}">more from this service</a>'
    )
    heading = _row("span", f"timeline (0 – {trace.duration_ms:.2f} ms)", "duration", cell="th")
    rows = "".join(_span_row(depth, span, trace) for depth, span in trace.in_tree_order())
    return (
        200,
        f"Trace {trace.trace_id}",
        f'<p>{summary}</p><table class="waterfall"><col style="width:45%"><col>'
        f'<col style="width:7em">{heading}{rows}</table>',
    )


def _span_row(depth: int, span: SpanView, trace: Trace) -> str:
    total = max(trace.end_ns - trace.start_ns, 1)
    left = min(100 * (span.start_ns - trace.start_ns) / total, 99.5)
    width = min(max(100 * (span.end_ns - span.start_ns) / total, 0.5), 100 - left)
    failed = span.status == "error"
    mark = f' <span class="error">{ERROR_MARK} ERROR</span>' if failed else ""
    message = f'<div class="error">{_e(span.status_message)}</div>' if span.status_message else ""
    label = (
        f'<div style="padding-left:{1.2 * depth:.1f}em"><b>{_e(span.service)}</b>'
        f" {_e(span.name)}{mark}{message}{_details(span)}</div>"
    )
    bar = f'<div class="track"><div class="bar" style="margin-left:{left:.2f}%;width:{width:.2f}%">'
    return (
        f'<tr class="{"failed" if failed else "ok"}"><td>{label}</td><td>{bar}</div></div></td>'
        f'<td class="num">{span.duration_ms:.2f} ms</td></tr>'
    )


def _details(span: SpanView) -> str:
    events = "".join(
        f"<p>+{(event.time_ns - span.start_ns) / 1e6:.2f} ms <b>{_e(event.name)}</b></p>"
        + _pairs(event.attributes)
        for event in span.events
    )
    return (
        f"<details><summary>details</summary><p>kind {_e(span.kind)} · span"
        f" <code>{_e(span.span_id)}</code></p><h4>Attributes</h4>{_pairs(span.attributes)}"
        f"<h4>Resource</h4>{_pairs(span.resource)}<h4>Events</h4>{events or '<p>none</p>'}"
        "</details>"
    )


# -- pieces -----------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value))


def _pairs(values: Mapping[str, Any]) -> str:
    rows = "".join(
        _row(f"<code>{_e(key)}</code>", _e(search_text(value)))
        for key, value in sorted(values.items())
    )
    return f"<table>{rows}</table>" if rows else "<p>none</p>"


def _row(*cells: object, cell: str = "td") -> str:
    """One table row; cells are HTML already escaped (numbers are safe as they are)."""
    return "<tr>" + "".join(f"<{cell}>{c}</{cell}>" for c in cells) + "</tr>"


def _errors(count: int) -> str:
    return f'<span class="error">{ERROR_MARK} {count}</span>' if count else "0"


def _search_href(**params: str) -> str:
    return _e(f"/search?{urlencode(params)}")


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)} · o11ykit store</title><style>{_STYLE}</style></head><body>"
        f'<p><a href="/">o11ykit local store</a></p><h1>{_e(title)}</h1>{body}</body></html>'
    )
