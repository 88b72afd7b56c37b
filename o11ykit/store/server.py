"""The store's servers: OTLP/HTTP and OTLP/gRPC in, Jaeger API v3 (and o11ykit's own) out.

Receivers decode and validate on their own threads, then hand the batch to the one writer
thread through a bounded queue and answer once it is committed: a 200 means the spans are on
disk, and a full queue is a 503 the exporter counts as a failed batch rather than memory
growing without bound. Readers each use their own connection; WAL lets them read while the
writer commits.

Start it with `o11ykit store serve`, in-process with `StoreServer`, or as a child process
with `spawn_store` (tests, labs).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from o11ykit.store import otlp_json
from o11ykit.store.ingest import (
    JSON_TYPES,
    MAX_BODY_BYTES,
    Batch,
    IngestError,
    Store,
    batch_from_request,
    decode_body,
    media_type,
)
from o11ykit.store.queries import (
    DEFAULT_SEARCH_DEPTH,
    Queries,
    QueryError,
    TraceQuery,
    parse_duration,
    parse_time,
)
from o11ykit.store.schema import INDEXED_SPAN_KEYS, open_database

DEFAULT_DIRECTORY = Path(".o11ykit") / "store"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 4318
DEFAULT_GRPC_PORT = 4317
DEFAULT_QUERY_PORT = 16686
TRACES_PATH = "/v1/traces"
QUEUE_BATCHES = 64
# How long a receiver waits for its batch to be committed before answering 503.
COMMIT_TIMEOUT = 30.0
# Idle keep-alive connections are dropped after this; exporters reconnect.
SOCKET_TIMEOUT = 30.0
# google.rpc.Code numbers for the HTTP statuses the servers answer with.
_RPC_CODES = {400: 3, 404: 5, 405: 12, 411: 3, 413: 8, 415: 3, 500: 13, 503: 14}


class StoreBusy(Exception):
    """The writer's queue is full (or the store is stopping): try again later."""


# --------------------------------------------------------------------------------------------
# The writer
# --------------------------------------------------------------------------------------------


class Writer:
    """The only thread that writes the database; everyone else submits batches to it."""

    def __init__(self, store: Store, capacity: int = QUEUE_BATCHES) -> None:
        self.store = store
        self._queue: queue.Queue[tuple[Batch, Future[int]] | None] = queue.Queue(capacity)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="o11ykit-store-writer", daemon=True)
        self._thread.start()

    def submit(self, batch: Batch, timeout: float = COMMIT_TIMEOUT) -> int:
        """Write `batch`, waiting for the commit; StoreBusy if it cannot be queued."""
        if self._stopping:
            raise StoreBusy("the store is stopping")
        future: Future[int] = Future()
        try:
            self._queue.put_nowait((batch, future))
        except queue.Full:
            raise StoreBusy("the store's write queue is full") from None
        return future.result(timeout)

    def stop(self) -> None:
        """Write what is queued, then close the database."""
        self._stopping = True
        self._queue.put(None)
        self._thread.join()
        self.store.close()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            batch, future = item
            try:
                future.set_result(self.store.write(batch))
            except Exception as exc:  # handed to the waiting receiver, which answers 5xx
                future.set_exception(exc)


# --------------------------------------------------------------------------------------------
# Shared HTTP plumbing
# --------------------------------------------------------------------------------------------


def rpc_status(status: int, message: str) -> dict[str, Any]:
    """google.rpc.Status as the OpenAPI document defines it, plus Jaeger's gateway error.

    The OpenAPI document types error bodies as google.rpc.Status; Jaeger's HTTP gateway
    writes GRPCGatewayError ({"error": {...}}). Both are present so a client written
    against either reads the message.
    """
    code = _RPC_CODES.get(status, 2)
    phrase = HTTPStatus(status).phrase
    detail = {"grpcCode": code, "httpCode": status, "message": message, "httpStatus": phrase}
    return {"code": code, "message": message, "error": detail}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: exporters reuse their connection
    timeout = SOCKET_TIMEOUT
    server_version = "o11ykit-store"

    def send_body(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(document, separators=(",", ":")).encode()
        self.send_body(status, body, "application/json", headers)

    def send_error_status(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_json(status, rpc_status(status, message), headers)

    def discard_body(self, limit: int = 1024 * 1024) -> None:
        """Read a body nobody wants, or give up the connection rather than read a big one."""
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
            return
        try:
            size = int(length)
        except ValueError:
            self.close_connection = True
            return
        if 0 <= size <= limit:
            self.rfile.read(size)
        else:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        # A line per request on stderr would bury the lines that matter.
        pass


class _Server(ThreadingHTTPServer):
    # Exporters in many processes connect at once; the default backlog of 5 refuses some.
    request_queue_size = 128
    daemon_threads = True
    # Idle keep-alive connections must not hold up stop() for SOCKET_TIMEOUT.
    block_on_close = False


def _http_server(host: str, port: int, handler: type[_Handler], **attributes: Any) -> _Server:
    bound = type(handler.__name__, (handler,), attributes)
    try:
        return _Server((host, port), bound)
    except OSError as exc:
        # The bare errno text does not say which of the three ports is taken.
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None


# --------------------------------------------------------------------------------------------
# OTLP/HTTP receiver
# --------------------------------------------------------------------------------------------


class OtlpHttpHandler(_Handler):
    writer: Writer
    max_body_bytes: int
    indexed_keys: frozenset[str]

    def do_POST(self) -> None:
        if urlsplit(self.path).path != TRACES_PATH:
            self.discard_body()
            self.send_error_status(404, f"no such path {self.path!r}: OTLP traces go to /v1/traces")
            return
        try:
            body = self._read_body()
            request = decode_body(
                body,
                self.headers.get("Content-Type"),
                self.headers.get("Content-Encoding"),
                max_bytes=self.max_body_bytes,
            )
            batch = batch_from_request(request, indexed_keys=self.indexed_keys)
            self.writer.submit(batch)
        except IngestError as exc:
            self.send_error_status(exc.status, exc.message)
            return
        except (StoreBusy, TimeoutError) as exc:
            self.send_error_status(503, str(exc) or "the store is busy", {"Retry-After": "1"})
            return
        if media_type(self.headers.get("Content-Type")) in JSON_TYPES:
            self.send_body(200, b"{}", "application/json")
        else:
            response = ExportTraceServiceResponse().SerializeToString()
            self.send_body(200, response, "application/x-protobuf")

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise IngestError(411, "Content-Length is required")
        try:
            size = int(length)
        except ValueError:
            size = -1
        if size < 0:
            self.close_connection = True
            raise IngestError(400, f"invalid Content-Length {length!r}")
        if size > self.max_body_bytes:
            # Answered without reading it; the connection cannot be reused past an unread body.
            self.close_connection = True
            raise IngestError(413, f"body of {size} bytes is over the {self.max_body_bytes} limit")
        return self.rfile.read(size)

    def _not_allowed(self) -> None:
        self.discard_body()
        if urlsplit(self.path).path == TRACES_PATH:
            self.send_error_status(405, "OTLP traces are sent with POST", {"Allow": "POST"})
        else:
            self.send_error_status(404, f"no such path {self.path!r}")

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed


# --------------------------------------------------------------------------------------------
# Query server: Jaeger API v3
# --------------------------------------------------------------------------------------------


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


class QueryHandler(_Handler):
    pool: ConnectionPool
    indexed_keys: frozenset[str]

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


# --------------------------------------------------------------------------------------------
# OTLP/gRPC receiver (optional: grpcio)
# --------------------------------------------------------------------------------------------


def _grpc_server(
    host: str, port: int, writer: Writer, max_bytes: int, keys: frozenset[str]
) -> tuple[Any, int] | None:
    try:
        import grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
    except ImportError:
        return None

    class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
        # The CamelCase name is fixed by the generated servicer.
        def Export(self, request: ExportTraceServiceRequest, context: Any) -> Any:
            try:
                writer.submit(batch_from_request(request, indexed_keys=keys))
            except IngestError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
            except (StoreBusy, TimeoutError) as exc:
                context.abort(grpc.StatusCode.UNAVAILABLE, str(exc) or "the store is busy")
            return ExportTraceServiceResponse()

    from concurrent import futures

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="o11ykit-store-grpc"),
        options=[
            ("grpc.max_receive_message_length", max_bytes),
            # Never share a port with another process that happens to bind the same one.
            ("grpc.so_reuseport", 0),
        ],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(), server)
    bound = server.add_insecure_port(f"{_grpc_host(host)}:{port}")
    if bound == 0:
        raise OSError(f"the OTLP/gRPC receiver could not listen on {host}:{port}")
    server.start()
    return server, bound


def _grpc_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# --------------------------------------------------------------------------------------------
# In-process API
# --------------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class StoreServer:
    """The three servers and the writer, on threads of this process.

    Ports of 0 pick free ports, readable as attributes once `start()` returns. A `grpc_port`
    of None serves OTLP over HTTP only.
    """

    def __init__(
        self,
        directory: str | Path = DEFAULT_DIRECTORY,
        *,
        host: str = DEFAULT_HOST,
        http_port: int = DEFAULT_HTTP_PORT,
        grpc_port: int | None = DEFAULT_GRPC_PORT,
        query_port: int = DEFAULT_QUERY_PORT,
        max_spans: int | None = None,
        max_age: float | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        queue_batches: int = QUEUE_BATCHES,
        indexed_keys: Iterable[str] = INDEXED_SPAN_KEYS,
        out: TextIO | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.host = host
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.query_port = query_port
        self.max_spans = max_spans
        self.max_age = max_age
        self.max_body_bytes = max_body_bytes
        self.queue_batches = queue_batches
        self.indexed_keys = frozenset(indexed_keys)
        self.out = out or sys.stderr
        self._writer: Writer | None = None
        self._pool: ConnectionPool | None = None
        self._http: list[_Server] = []
        self._grpc: Any = None

    def __enter__(self) -> StoreServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> StoreServer:
        if not is_loopback(self.host):
            self.out.write(
                f"o11ykit store: WARNING listening on {self.host}: anyone who can reach this "
                "machine can send and read traces\n"
            )
        store = Store(
            self.directory,
            max_spans=self.max_spans,
            max_age_seconds=self.max_age,
            indexed_keys=self.indexed_keys,
        )
        self._writer = Writer(store, self.queue_batches)
        self._pool = ConnectionPool(self.directory)
        try:
            self._listen()
        except BaseException:
            self.stop()
            raise
        return self

    def _listen(self) -> None:
        assert self._writer is not None and self._pool is not None
        receiver = _http_server(
            self.host,
            self.http_port,
            OtlpHttpHandler,
            writer=self._writer,
            max_body_bytes=self.max_body_bytes,
            indexed_keys=self.indexed_keys,
        )
        self._serve(receiver, "otlp-http")
        self.http_port = receiver.server_port
        query = _http_server(
            self.host,
            self.query_port,
            QueryHandler,
            pool=self._pool,
            indexed_keys=self.indexed_keys,
        )
        self._serve(query, "query")
        self.query_port = query.server_port
        if self.grpc_port is not None:
            started = _grpc_server(
                self.host, self.grpc_port, self._writer, self.max_body_bytes, self.indexed_keys
            )
            if started is None:
                self.out.write("o11ykit store: grpcio is not installed; OTLP over HTTP only\n")
                self.grpc_port = None
            else:
                self._grpc, self.grpc_port = started

    def _serve(self, server: _Server, name: str) -> None:
        self._http.append(server)
        # A short poll interval: stop() waits for it, and the default of 0.5 s is most of
        # a test's stop time.
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name=f"o11ykit-store-{name}", daemon=True
        )
        thread.start()

    def stop(self) -> None:
        """Stop listening, write what is queued, close the database. Safe to call twice."""
        if self._grpc is not None:
            self._grpc.stop(grace=1.0).wait(2.0)
            self._grpc = None
        for server in self._http:
            server.shutdown()
            server.server_close()
        self._http.clear()
        if self._writer is not None:
            self._writer.stop()
            self._writer = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    @property
    def otlp_http_endpoint(self) -> str:
        return f"http://{_url_host(self.host)}:{self.http_port}"

    @property
    def query_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.query_port}"

    def describe(self) -> str:
        lines = [
            f"o11ykit store: data in {self.directory.resolve()}",
            f"  OTLP/HTTP   {self.otlp_http_endpoint}{TRACES_PATH}",
        ]
        if self.grpc_port is not None:
            lines.append(f"  OTLP/gRPC   {_url_host(self.host)}:{self.grpc_port}")
        lines.append(f"  Jaeger API  {self.query_url}/api/v3/services")
        return "\n".join(lines) + "\n"


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


# --------------------------------------------------------------------------------------------
# `o11ykit store serve`
# --------------------------------------------------------------------------------------------


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return parse_duration(text, "--max-age") / 1e9


def serve(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run until SIGINT or SIGTERM; the arguments are those of `o11ykit store serve`."""
    host = args.host or ("0.0.0.0" if args.listen_all else DEFAULT_HOST)
    try:
        server = StoreServer(
            args.directory or DEFAULT_DIRECTORY,
            host=host,
            http_port=_port(args.otlp_http_port, DEFAULT_HTTP_PORT),
            grpc_port=None if args.no_grpc else _port(args.otlp_grpc_port, DEFAULT_GRPC_PORT),
            query_port=_port(args.query_port, DEFAULT_QUERY_PORT),
            max_spans=args.max_spans,
            max_age=_seconds(args.max_age),
            max_body_bytes=args.max_body_bytes or MAX_BODY_BYTES,
            out=sys.stderr,
        ).start()
    except (OSError, QueryError, sqlite3.Error) as exc:
        sys.stderr.write(f"o11ykit store: cannot start: {exc}\n")
        return 1
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.exit_with_parent:
        threading.Thread(target=_watch_parent, args=(stop,), daemon=True).start()
    try:
        out.write(server.describe())
        out.flush()
        if args.ready_file:
            _write_ready(Path(args.ready_file), server)
        stop.wait()
    finally:
        server.stop()
    out.write("o11ykit store: stopped\n")
    return 0


def _port(value: int | None, default: int) -> int:
    return default if value is None else value


def _write_ready(path: Path, server: StoreServer) -> None:
    ready = {
        "pid": os.getpid(),
        "http_port": server.http_port,
        "grpc_port": server.grpc_port,
        "query_port": server.query_port,
    }
    # The parent polls for the file: it must never see it half written.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(ready), encoding="utf-8")
    os.replace(tmp, path)


def _watch_parent(stop: threading.Event) -> None:
    """Stops the store if the process that spawned it dies without stopping it."""
    parent = os.getppid()
    while not stop.wait(1.0):
        if os.getppid() != parent:
            stop.set()


# --------------------------------------------------------------------------------------------
# As a child process
# --------------------------------------------------------------------------------------------


class StoreProcess:
    """A store running as `python -m o11ykit.store serve`; see `spawn_store`."""

    def __init__(self, process: subprocess.Popen[bytes], work: Path, directory: Path) -> None:
        self.process = process
        self.directory = directory
        self._work = work
        self.http_port = 0
        self.grpc_port: int | None = None
        self.query_port = 0

    def __enter__(self) -> StoreProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def otlp_http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def traces_url(self) -> str:
        return f"{self.otlp_http_endpoint}{TRACES_PATH}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def stderr(self) -> str:
        try:
            return (self._work / "stderr.log").read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (the store drains its queue and exits), then SIGKILL if it will not."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self._work, ignore_errors=True)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing is drained."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self._work, ignore_errors=True)

    def _wait_until_ready(self, timeout: float) -> None:
        ready_file = self._work / "ready.json"
        deadline = time.monotonic() + timeout
        while not ready_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the store exited with {self.process.returncode} before it was ready:\n"
                    f"{self.stderr()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"the store was not ready after {timeout} s:\n{self.stderr()}")
            time.sleep(0.01)
        ready = json.loads(ready_file.read_text(encoding="utf-8"))
        self.http_port = int(ready["http_port"])
        self.grpc_port = ready["grpc_port"]
        self.query_port = int(ready["query_port"])


def spawn_store(
    directory: str | Path,
    *,
    http_port: int = 0,
    grpc_port: int | None = 0,
    query_port: int = 0,
    max_spans: int | None = None,
    max_age: float | None = None,
    max_body_bytes: int | None = None,
    host: str | None = None,
    startup_timeout: float = 15.0,
    env: dict[str, str] | None = None,
) -> StoreProcess:
    """Start a store in a child process and wait until it listens (free ports by default)."""
    work = Path(tempfile.mkdtemp(prefix="o11ykit-store-"))
    command = [
        sys.executable,
        "-m",
        "o11ykit.store",
        "serve",
        "--dir",
        str(directory),
        "--otlp-http-port",
        str(http_port),
        "--query-port",
        str(query_port),
        "--ready-file",
        str(work / "ready.json"),
        "--exit-with-parent",
    ]
    command += ["--otlp-grpc-port", str(grpc_port)] if grpc_port is not None else ["--no-grpc"]
    if max_spans is not None:
        command += ["--max-spans", str(max_spans)]
    if max_age is not None:
        command += ["--max-age", str(max_age)]
    if max_body_bytes is not None:
        command += ["--max-body-bytes", str(max_body_bytes)]
    if host is not None:
        command += ["--host", host]
    with (work / "stderr.log").open("wb") as log:
        # A file, not a pipe: it can never fill up and block the child.
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
        )
    store = StoreProcess(process, work, Path(directory))
    try:
        store._wait_until_ready(startup_timeout)
    except BaseException:
        store.stop()
        raise
    return store
