"""The query server: Jaeger API v3, and o11ykit's own analytics endpoints beside it."""

from __future__ import annotations

import contextlib
import json
import queue
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from o11ykit.store import otlp_json
from o11ykit.store.http_base import Handler, rpc_status
from o11ykit.store.queries import (
    DEFAULT_SEARCH_DEPTH,
    Queries,
    QueryError,
    TraceQuery,
    parse_duration,
    parse_time,
)
from o11ykit.store.schema import open_database

if TYPE_CHECKING:
    from o11ykit.store.writer import Writer


class ConnectionPool:
    """Read connections, reused across the query server's short-lived request threads."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = self._idle.get_nowait()
        except queue.Empty:
            connection = open_database(self.directory, readonly=True)
            with self._lock:
                self._all.append(connection)
        try:
            yield connection
        finally:
            self._idle.put(connection)

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()


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
    service, operation = _param(params, "service"), _param(params, "operation")
    return TraceQuery(
        start_min_ns=parse_time(start_min[1], start_min[0]),
        start_max_ns=parse_time(start_max[1], start_max[0]),
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
    return {key: _text(value) for key, value in document.items()}


def _text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _search_depth(found: tuple[str, str] | None) -> int:
    if found is None:
        return DEFAULT_SEARCH_DEPTH
    try:
        depth = int(found[1])
    except ValueError:
        depth = 0
    if depth <= 0:
        raise QueryError(f"{found[0]} must be a positive integer, not {found[1][:50]!r}")
    return depth


# A query waits at most this long for the writer to store what was acknowledged before it.
CATCH_UP_SECONDS = 5.0


class QueryHandler(Handler):
    pool: ConnectionPool
    indexed_keys: frozenset[str]
    # The store's writer: a query answers for every batch acknowledged before it arrived.
    writer: Writer | None = None

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def _not_allowed(self) -> None:
        if urlsplit(self.path).path.startswith("/api/o11ykit/"):
            self.discard_body()
            self._dispatch()
            return
        self.discard_body()
        self.send_error_status(405, f"{self.command} is not supported here", {"Allow": "GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        params = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if self.writer is not None and path != "/health":
            self.writer.wait_written(CATCH_UP_SECONDS)
        try:
            with self.pool.connection() as connection:
                status, document = self._route(path, params, connection)
        except QueryError as exc:
            status, document = 400, rpc_status(400, str(exc))
        self.send_json(status, document)

    def _route(
        self, path: str, params: dict[str, str], connection: sqlite3.Connection
    ) -> tuple[int, Any]:
        queries = Queries(connection, self.indexed_keys)
        if path.startswith("/api/o11ykit/"):
            return _analytics(self.command, path, params, connection)
        if path == "/health":
            return 200, {"status": "ok"}
        if path == "/api/v3/services":
            return 200, {"services": queries.services()}
        if path == "/api/v3/operations":
            return 200, self._operations(queries, params)
        if path == "/api/v3/traces":
            return 200, otlp_json.result(queries.find_traces(trace_query(params)))
        if path.startswith("/api/v3/traces/"):
            found = queries.get_trace(path.removeprefix("/api/v3/traces/"))
            if found is None:
                return 404, rpc_status(404, "trace not found")
            return 200, otlp_json.result(found)
        return 404, rpc_status(404, f"no such path {path!r}")

    def _operations(self, queries: Queries, params: dict[str, str]) -> dict[str, Any]:
        service = params.get("service")
        if not service:
            raise QueryError("service is required")
        kind = params.get("spanKind") or params.get("span_kind")
        operations = queries.operations(service, kind)
        return {"operations": [{"name": name, "spanKind": kind} for name, kind in operations]}


def _analytics(
    method: str, path: str, params: dict[str, str], connection: sqlite3.Connection
) -> tuple[int, Any]:
    try:
        from o11ykit.store import analytics_http
    except ModuleNotFoundError as exc:
        if exc.name != "o11ykit.store.analytics_http":
            raise
        return 404, rpc_status(404, f"no such path {path!r}: analytics are not available")
    return analytics_http.handle(method, path, params, connection)
