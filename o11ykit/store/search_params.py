"""Jaeger's GET /api/v3/traces parameters -> the store's TraceQuery.

Both spellings are accepted: the camelCase names of the OpenAPI document and the older
snake_case ones Jaeger's HTTP gateway still reads (`query.service_name`, `query.num_traces`).
The query server's API and the store's own search page read them the same way.
"""

from __future__ import annotations

import json

from o11ykit.argtypes import whole_number
from o11ykit.attribute_text import search_text
from o11ykit.store.queries import (
    DEFAULT_SEARCH_DEPTH,
    QueryError,
    TraceQuery,
    parse_duration,
    parse_time,
)

_CAMEL_AND_SNAKE = {
    "service": ("query.serviceName", "query.service_name"),
    "operation": ("query.operationName", "query.operation_name"),
    "start_min": ("query.startTimeMin", "query.start_time_min"),
    "start_max": ("query.startTimeMax", "query.start_time_max"),
    "duration_min": ("query.durationMin", "query.duration_min"),
    "duration_max": ("query.durationMax", "query.duration_max"),
    "depth": ("query.searchDepth", "query.search_depth", "query.num_traces"),
    "attributes": ("query.attributes",),
    "filter": ("query.filter",),
}


def _param(params: dict[str, str], field: str) -> tuple[str, str] | None:
    for name in _CAMEL_AND_SNAKE[field]:
        if params.get(name, "") != "":
            return name, params[name]
    return None


def trace_query(params: dict[str, str]) -> TraceQuery:
    """Jaeger's GET /api/v3/traces parameters (camelCase or the older snake_case) -> query."""
    if _param(params, "filter"):
        raise QueryError("query.filter (structured filters) is not supported by the local store")
    start_min, start_max = _param(params, "start_min"), _param(params, "start_max")
    if start_min is None or start_max is None:
        raise QueryError("query.startTimeMin and query.startTimeMax are required")
    durations = {
        field: parse_duration(found[1], found[0]) if (found := _param(params, field)) else None
        for field in ("duration_min", "duration_max")
    }
    start_min_ns = parse_time(start_min[1], start_min[0])
    start_max_ns = parse_time(start_max[1], start_max[0])
    # As Jaeger v2's gateway: a window that is empty or reversed is the caller's mistake,
    # which "no traces found" would hide.
    if start_min_ns >= start_max_ns:
        raise QueryError(f"{start_min[0]} must be before {start_max[0]}")
    service, operation = _param(params, "service"), _param(params, "operation")
    return TraceQuery(
        start_min_ns=start_min_ns,
        start_max_ns=start_max_ns,
        service=service[1] if service else None,
        operation=operation[1] if operation else None,
        duration_min_ns=durations["duration_min"],
        duration_max_ns=durations["duration_max"],
        attributes=_attributes(_param(params, "attributes")),
        search_depth=_search_depth(_param(params, "depth")),
    )


def _attributes(found: tuple[str, str] | None) -> dict[str, str]:
    if found is None:
        return {}
    try:
        document = json.loads(found[1])
    except ValueError:
        document = None
    if not isinstance(document, dict) or not all(
        isinstance(value, str | int | float | bool) for value in document.values()
    ):
        raise QueryError(
            f'{found[0]} must be a JSON object of strings, like {{"http.response.status_code":'
            f'"500"}}, not {found[1][:200]!r}'
        )
    # The text ingest stores for the same attribute value (value_text): 2.0 is "2".
    return {key: search_text(value) for key, value in document.items()}


def _search_depth(found: tuple[str, str] | None) -> int:
    if found is None:
        return DEFAULT_SEARCH_DEPTH
    depth = whole_number(found[1])
    if depth is None or depth <= 0:
        raise QueryError(f"{found[0]} must be a positive integer, not {found[1][:50]!r}")
    return depth
