"""The store's servers: OTLP/HTTP and OTLP/gRPC in, Jaeger API v3 (and o11ykit's own) out.

Receivers decode and validate on their own threads, append the request to the ingest log
and hand the batch to the one writer thread through a bounded queue: a 200 means the request
is in the log, which the writer applies at its next start if the process dies first. A queue
that stays full is a 503 the exporter counts as a failed batch rather than memory growing
without bound. The writer commits whatever is waiting together. Readers each use their own
connection; WAL lets them read while the writer commits, and a query first waits for the
writer to store what was acknowledged before it arrived.

Start it with `o11ykit store serve`, in-process with `StoreServer`, or as a child process
with `spawn_store` (tests, labs).
"""

from __future__ import annotations

import argparse
import errno
import gc
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from o11ykit import argtypes
from o11ykit.loopback import is_loopback
from o11ykit.store.decode import MAX_BODY_BYTES
from o11ykit.store.dirlock import DirectoryInUse
from o11ykit.store.http_base import Server, http_server
from o11ykit.store.ingest import Store, check_retention
from o11ykit.store.process import watch_parent, write_ready_file
from o11ykit.store.query_http import ConnectionPool, QueryHandler
from o11ykit.store.receivers import TRACES_PATH, Intake, OtlpHttpHandler, grpc_server
from o11ykit.store.schema import DATABASE_NAME, INDEXED_SPAN_KEYS
from o11ykit.store.writer import QUEUE_BATCHES, Writer

DEFAULT_DIRECTORY = Path(".o11ykit") / "store"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 4318
DEFAULT_GRPC_PORT = 4317
DEFAULT_QUERY_PORT = 16686


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
        # None: no gRPC, no span limit. max_spans by `--max-spans`' parser, as spawn_store
        # checks it: the same words from both.
        argtypes.refuse_bad_settings(
            [("grpc_port", argtypes.port, grpc_port), ("max_spans", argtypes.positive, max_spans)]
        )
        argtypes.refuse_bad_settings(
            [
                ("http_port", argtypes.port, http_port),
                ("query_port", argtypes.port, query_port),
                ("max_body_bytes", argtypes.positive, max_body_bytes),
            ],
            none_is_unset=False,
        )
        check_retention(max_spans, max_age, age_name="max_age")
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
        self._intake = Intake()
        self._listening: dict[str, Server] = {}  # bound, not yet serving
        self._http: list[Server] = []  # serving
        self._grpc: Any = None
        self._grpc_started = False

    def __enter__(self) -> StoreServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> StoreServer:
        # Listen before the store opens: a host that does not resolve or a port another
        # program holds then fails before the data directory is created, locked or replayed.
        try:
            self._listen()
            self._open()
            for name, server in self._listening.items():
                self._serve(server, name)
            self._listening.clear()
            if self._grpc is not None:
                self._grpc.start()
                self._grpc_started = True
        except BaseException:
            self.stop()
            raise
        if not is_loopback(self.host):
            self.out.write(
                f"o11ykit store: WARNING listening on {self.host}: anyone who can reach this "
                "machine can send and read traces\n"
            )
        return self

    def _listen(self) -> None:
        """Bind every port; the servers answer once `_open` has given them the store."""
        receiver = http_server(
            self.host,
            self.http_port,
            OtlpHttpHandler,
            "OTLP/HTTP",
            intake=self._intake,
            max_body_bytes=self.max_body_bytes,
        )
        self._listening["otlp-http"] = receiver
        self.http_port = receiver.server_port
        query = http_server(self.host, self.query_port, QueryHandler, "query")
        self._listening["query"] = query
        self.query_port = query.server_port
        # Where a query sent to the OTLP port should have gone, for its 404.
        receiver.RequestHandlerClass.query_port = self.query_port
        if self.grpc_port is not None:
            bound = grpc_server(self.host, self.grpc_port, self._intake, self.max_body_bytes)
            if bound is None:
                self.out.write("o11ykit store: grpcio is not installed; OTLP over HTTP only\n")
                self.grpc_port = None
            else:
                self._grpc, self.grpc_port = bound

    def _open(self) -> None:
        store = Store(
            self.directory,
            max_spans=self.max_spans,
            max_age_seconds=self.max_age,
            indexed_keys=self.indexed_keys,
        )
        # Those configured and every key the store indexed before: receivers and queries
        # must use the store's own set (Store._settle_indexed_keys).
        self.indexed_keys = store.indexed_keys
        try:
            self._writer = Writer(store, self.queue_batches)
        except BaseException:  # replay failed (a full disk): the directory must not stay locked
            store.close()
            raise
        self._pool = ConnectionPool(self.directory)
        self._intake.writer = self._writer
        self._intake.indexed_keys = self.indexed_keys
        query_handler = self._listening["query"].RequestHandlerClass
        query_handler.pool = self._pool
        query_handler.indexed_keys = self.indexed_keys
        query_handler.writer = self._writer

    def _serve(self, server: Server, name: str) -> None:
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
            if not self._grpc_started:  # gRPC lets go of a port only once started and stopped
                self._grpc.start()
            self._grpc.stop(grace=1.0).wait(2.0)
            self._grpc = None
            self._grpc_started = False
        for server in self._http:
            server.shutdown()
            server.server_close()
        self._http.clear()
        for server in self._listening.values():  # never served: shutdown() would wait forever
            server.server_close()
        self._listening.clear()
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
        lines.append(f"  in a browser {self.query_url}/ (services, search, trace waterfalls)")
        return "\n".join(lines) + "\n"


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def serve(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run until SIGINT or SIGTERM; the arguments are those of `o11ykit store serve`."""
    host = args.host or ("0.0.0.0" if args.listen_all else DEFAULT_HOST)
    # gRPC's core logs a port in use as a raw "E1206 ... add_port.cc" line before the store
    # says it in words; set in the store's own process only (gRPC reads it as it starts),
    # and GRPC_VERBOSITY=ERROR in the environment brings its lines back.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    try:
        server = StoreServer(
            args.directory or DEFAULT_DIRECTORY,
            host=host,
            http_port=_port(args.otlp_http_port, DEFAULT_HTTP_PORT),
            grpc_port=None if args.no_grpc else _port(args.otlp_grpc_port, DEFAULT_GRPC_PORT),
            query_port=_port(args.query_port, DEFAULT_QUERY_PORT),
            max_spans=args.max_spans,
            max_age=args.max_age,
            max_body_bytes=args.max_body_bytes or MAX_BODY_BYTES,
            out=sys.stderr,
        ).start()
    except (OSError, ValueError, sqlite3.Error) as exc:
        hint = ""
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            hint = (
                "; is another store or collector running? Choose other ports with"
                " --otlp-http-port, --otlp-grpc-port and --query-port (0: any free one),"
                " or --no-grpc"
            )
        if isinstance(exc, DirectoryInUse):
            hint = "; stop that store, or give this one another directory with --dir"
        if isinstance(exc, OSError) and exc.errno in (errno.EEXIST, errno.ENOTDIR):
            directory = Path(args.directory or DEFAULT_DIRECTORY).absolute()
            # Only when the path in the way is --dir's own, not one inside the store.
            if exc.filename and Path(exc.filename).absolute() in (directory, *directory.parents):
                hint = "; --dir must name a directory (it is created if missing), not a file"
        if _not_writable(exc):
            directory = Path(args.directory or DEFAULT_DIRECTORY).absolute()
            hint = f"; the data directory {directory} is not writable: choose another with --dir"
        if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
            # SQLite does not name the file; the store's is the one it opens in --dir.
            database = Path(args.directory or DEFAULT_DIRECTORY).absolute() / DATABASE_NAME
            hint = (
                f": {database} holds something else; move it elsewhere, or give the store"
                " another directory with --dir"
            )
        sys.stderr.write(f"o11ykit store: cannot start: {exc}{hint}\n")
        return 1
    _tune_gc()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.exit_with_parent:
        threading.Thread(target=watch_parent, args=(stop,), daemon=True).start()
    try:
        out.write(server.describe())
        out.flush()
        if args.ready_file:
            _write_ready(Path(args.ready_file), server)
        # Waking up now and then lets the main thread run a signal handler promptly even
        # when the signal arrived while another thread was busy.
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    out.write("o11ykit store: stopped\n")
    return 0


def _tune_gc() -> None:
    """Collect less often: for the store's own process only, never a host application's.

    Decoding a batch makes thousands of short-lived objects, freed by reference counting,
    yet each 700 allocations start a collection, and batches waiting for the writer get
    promoted and rescanned. With everything from start-up frozen out of the collector and
    the thresholds raised, the store's ingest ceiling went from 10,756 to 12,981 spans/s
    (median of 3 alternating rounds each, 2026-12-03; docs/store.md).
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)


def _not_writable(exc: BaseException) -> bool:
    """A permission refused on the data directory or its files, or a read-only database."""
    if isinstance(exc, OSError):
        # With a file name: a port refused (a privileged one) has none, and is no directory's.
        return exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and bool(exc.filename)
    # SQLite's own words when it may read the file but not write it.
    return isinstance(exc, sqlite3.OperationalError) and "readonly database" in str(exc)


def _port(value: int | None, default: int) -> int:
    return default if value is None else value


def _write_ready(path: Path, server: StoreServer) -> None:
    write_ready_file(
        path,
        {
            "pid": os.getpid(),
            "http_port": server.http_port,
            "grpc_port": server.grpc_port,
            "query_port": server.query_port,
        },
    )
