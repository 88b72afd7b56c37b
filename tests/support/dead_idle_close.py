"""o11ykit exporting to an OTLP/HTTP endpoint that closes idle kept-alive connections.

    python tests/support/dead_idle_close.py BATCHES

Collectors and load balancers close a kept-alive connection after some idle time (the Go
http.Server behind the OpenTelemetry Collector, cloud load balancers after ~60 s). This
endpoint does it after 0.3 s, and o11ykit sends one batch every 0.6 s.

Prints one JSON line: {"received": spans the endpoint decoded, "stats": the handle's counters}.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import o11ykit

IDLE_SECONDS = 0.3
received: list[str] = []


class IdleClosingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a collector does
    timeout = IDLE_SECONDS  # an idle connection is closed after this long, without notice

    def do_POST(self) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                received.extend(span.name for span in scope_spans.spans)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def main(batches: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), IdleClosingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    handle = o11ykit.init(
        service_name="dead-idle-close",
        backend="otlp",
        endpoint=f"http://127.0.0.1:{server.server_port}",
        schedule_delay=60.0,  # batches leave only when force_flush sends them
    )
    tracer = handle.tracer("dead-idle-close")
    for number in range(batches):
        with tracer.start_as_current_span(f"batch-{number}"):
            pass
        handle.force_flush(2.0)
        time.sleep(2 * IDLE_SECONDS)
    o11ykit.shutdown(timeout=1.0)
    server.shutdown()
    print(json.dumps({"received": received, "stats": handle.stats().as_dict()}), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
