"""The least an OTLP/HTTP receiver into SQLite can do: the yardstick beside the store's ingest.

Run by ``benchmarks.store.run`` as its own process, with the same exporter clients as the
store, in alternating rounds: the ratio of the two rates says how much of the machine's
ingest ceiling the store reaches, whatever the speed of the machine that day.

What it does per request: parse the protobuf body, then one row a span (ids, name, times
and the span's own bytes) into one table with no index but its row id, one commit a
request. No validation, no ingest log, no attribute index, no rollups, no query side:
everything the store does beyond that is what the ratio prices. The table is
``spans(id, ...)`` in ``traces.db``, so the runner counts what it stored as it counts the
store's (``max(id)``).
"""

from __future__ import annotations

import argparse
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from o11ykit.store.schema import DATABASE_NAME

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS spans (id INTEGER PRIMARY KEY, trace_id BLOB, span_id BLOB,"
    " name TEXT, start_ns INTEGER, end_ns INTEGER, span BLOB)"
)
INSERT = "INSERT INTO spans(trace_id, span_id, name, start_ns, end_ns, span) VALUES (?,?,?,?,?,?)"
EMPTY_RESPONSE = ExportTraceServiceResponse().SerializeToString()


def serve(directory: Path, ready: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(directory / DATABASE_NAME, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(SCHEMA)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            rows = [
                (s.trace_id, s.span_id, s.name, s.start_time_unix_nano, s.end_time_unix_nano,
                 s.SerializeToString())
                for resource_spans in request.resource_spans
                for scope_spans in resource_spans.scope_spans
                for s in scope_spans.spans
            ]  # fmt: skip
            with lock, connection:  # one transaction, committed on the way out
                connection.executemany(INSERT, rows)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(EMPTY_RESPONSE)))
            self.end_headers()
            self.wfile.write(EMPTY_RESPONSE)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ready.write_text(str(server.server_address[1]))
    try:
        server.serve_forever()
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="where traces.db goes")
    parser.add_argument("--ready", type=Path, required=True, help="gets the port once it listens")
    args = parser.parse_args(argv)
    serve(args.dir, args.ready)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
