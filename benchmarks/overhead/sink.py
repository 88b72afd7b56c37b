"""Minimal OTLP/HTTP trace sink for the overhead benchmark (stdlib http.server).

It accepts ``POST /v1/traces``, parses the protobuf body only to count spans, and
answers 200 with an empty body straight away, so exporters never wait on it. It
counts spans per ``instrumentation scope / span name`` as well, which tells which
instrumentation produced what (e.g. whether FastAPI's native telemetry or the SQL
instrumentor emitted anything). With ``--inspect`` it also counts spans whose string
attributes still hold the benchmark's raw secret (``token=<12 hex digits>``) or a
tenant id (``shop-<n>``), whatever the attribute key; that costs sink CPU, so the
runner enables it only for its low-rate census. ``GET /stats`` returns the counters.

Run: ``python -m benchmarks.overhead.sink --ready-file FILE``; once listening it
writes ``{"http_port": N}`` to FILE, the same contract as tests/support/otlp_receiver.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import signal
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

RAW_TOKEN = re.compile(r"token=[0-9a-f]{12}")
TENANT = re.compile(r"\bshop-\d+\b")


def _string_values(span: Span) -> list[str]:
    return [kv.value.string_value for kv in span.attributes if kv.value.HasField("string_value")]


class _Stats:
    """Counters shared by the handler threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inspect = False
        self.posts = 0
        self.spans = 0
        self.bad = 0
        self.by_scope_and_name: Counter[str] = Counter()
        self.inspected: Counter[str] = Counter()

    def add(self, request: ExportTraceServiceRequest) -> None:
        names: Counter[str] = Counter()
        inspected: Counter[str] = Counter()
        count = 0
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope.name or "<no scope>"
                for span in scope_spans.spans:
                    names[f"{scope} | {span.name}"] += 1
                    count += 1
                    if self.inspect:
                        values = _string_values(span)
                        inspected["spans_with_raw_token"] += any(map(RAW_TOKEN.search, values))
                        inspected["spans_with_tenant"] += any(map(TENANT.search, values))
        with self.lock:
            self.posts += 1
            self.spans += count
            self.by_scope_and_name.update(names)
            self.inspected.update(inspected)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "posts": self.posts,
                "spans": self.spans,
                "bad": self.bad,
                "by_scope_and_name": dict(self.by_scope_and_name),
                "inspected": dict(self.inspected),
            }


STATS = _Stats()


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so exporters keep their connection alive, as with a real collector.
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.split("?", 1)[0] != "/v1/traces":
            self._reply(404, b"")
            return
        try:
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
        except Exception:  # a malformed export must not kill the sink
            with STATS.lock:
                STATS.bad += 1
            self._reply(400, b"")
            return
        STATS.add(request)
        # An empty body is a valid, empty ExportTraceServiceResponse.
        self._reply(200, b"", "application/x-protobuf")

    def do_GET(self) -> None:
        if self.path != "/stats":
            self._reply(404, b"")
            return
        self._reply(200, json.dumps(STATS.snapshot()).encode(), "application/json")

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one log line per export would cost more than the export itself


def _write_ready(path: str, port: int) -> None:
    # Write then rename so the runner never reads a half-written file.
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump({"http_port": port}, handle)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--inspect", action="store_true", help="count raw secrets and tenants")
    args = parser.parse_args(argv)
    STATS.inspect = args.inspect

    server = ThreadingHTTPServer(("127.0.0.1", args.port), _Handler)
    server.daemon_threads = True
    # SIGTERM -> SystemExit in the main thread, which leaves serve_forever() cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _write_ready(args.ready_file, server.server_address[1])
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
