"""The query server: Jaeger API v3, and o11ykit's own analytics endpoints beside it."""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from o11ykit.store import otlp_json, summaries, ui
from o11ykit.store.http_base import Handler, rpc_status
from o11ykit.store.queries import Queries, QueryError
from o11ykit.store.schema import one_snapshot, open_database
from o11ykit.store.search_params import trace_query

if TYPE_CHECKING:
    from o11ykit.store.writer import Writer

log = logging.getLogger("o11ykit.store")


class PoolClosed(Exception):
    """The store is stopping: a query that arrives now on a kept-alive connection gets 503."""


class ConnectionPool:
    """Read connections, reused across the query server's short-lived request threads."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise PoolClosed
        try:
            connection = self._idle.get_nowait()
            if self._closed:  # close() closed it since the check above
                raise PoolClosed
        except queue.Empty:
            with self._lock:
                # Opened under the lock, so close() cannot miss one opened as it runs.
                if self._closed:
                    raise PoolClosed from None
                connection = open_database(self.directory, readonly=True)
                self._all.append(connection)
        try:
            yield connection
        finally:
            self._idle.put(connection)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for connection in self._all:
                connection.close()
            self._all.clear()


# A query waits at most this long for the writer to store what was acknowledged before it.
CATCH_UP_SECONDS = 5.0
# Jaeger v2's message, word for word, for clients that match on it.
NO_TRACES_FOUND = "No traces found"


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
            self._dispatch()
            return
        self.discard_body()
        self.send_error_status(405, f"{self.command} is not supported here", {"Allow": "GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = _not_allowed

    def _dispatch(self) -> None:
        # A body nobody reads would be taken for the connection's next request.
        self.discard_body()
        url = urlsplit(self.path)
        path = unquote(url.path)
        # A parameter given twice is read from its first value, as Jaeger's gateway reads it
        # (Go's url.Values.Get).
        params = {key: values[0] for key, values in parse_qs(url.query).items()}
        if self.writer is not None and path != "/health":
            self.writer.wait_written(CATCH_UP_SECONDS)
        page: bytes | None = None
        try:
            # One snapshot: a trace's spans and their resources are read as one state, while
            # the writer may evict them (and sweep the resources) between two statements.
            with self.pool.connection() as connection, one_snapshot(connection):
                if ui.is_page(path):  # Jaeger UI's paths, so the links o11ykit prints open a page
                    queries = Queries(connection, self.indexed_keys)
                    status, page = ui.render(path, params, queries)
                else:
                    status, document = self._route(path, params, connection)
        except QueryError as exc:
            status, document = 400, rpc_status(400, str(exc))
        except Exception as exc:
            page = None
            if isinstance(exc, PoolClosed) or self.pool.closed:
                # Stopping: a kept-alive connection asked once its database was closed.
                self.close_connection = True
                status, document = 503, rpc_status(503, "the store is stopping")
            else:  # a bug must cost this query its answer, not the connection
                log.exception("o11ykit store: could not answer %s", self.path[:300])
                message = f"the store could not answer: {type(exc).__name__}: {exc}"
                status, document = 500, rpc_status(500, message)
        if page is not None:
            self.send_body(status, page, ui.CONTENT_TYPE, ui.HEADERS)
        else:
            self.send_json(status, document, {"Allow": "GET"} if status == 405 else None)

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
            found_traces = queries.find_traces(trace_query(params))
            if not found_traces.traces:
                # As Jaeger v2's HTTP gateway answers a search that found nothing.
                return 404, rpc_status(404, NO_TRACES_FOUND)
            return 200, otlp_json.result(found_traces)
        if path == "/api/v3/trace-summaries":
            # Unlike FindTraces, Jaeger answers 200 with no summaries when nothing matches.
            ids = queries.find_trace_ids(trace_query(params))
            found = summaries.trace_summaries(connection, ids)
            return 200, {"summaries": [summary.to_dict() for summary in found]}
        if path.startswith("/api/v3/traces/"):
            found = queries.get_trace(path.removeprefix("/api/v3/traces/"))
            if found is None:
                # Jaeger v2's gateway answers an unknown id as it answers an empty search.
                return 404, rpc_status(404, NO_TRACES_FOUND)
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
