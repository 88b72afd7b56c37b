"""One ingest client process for the store benchmark; the runner starts several.

    python -m benchmarks.store.client --mode sdk|raw --url URL --ready FILE --out FILE

``sdk``: an application process made of the OpenTelemetry SDK and its own OTLP/HTTP exporter
(``OTLPSpanExporter``), creating traces of realistic spans as fast as the pipeline takes them.
``raw``: pre-built ~512-span protobuf bodies POSTed one after another over one kept-alive
connection, so nearly all of the CPU spent is the store's: its ceiling.

Both run until SIGTERM/SIGINT or ``--max-seconds``, then write a JSON summary to ``--out``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# The SDK client never lets more than this many spans wait in its queue: an open-loop
# producer would fill a large queue and drop spans, burning CPU the store shares.
MAX_PENDING_SPANS = 8192
RAW_BODIES = 16

TENANTS = [f"tenant-{n:02d}" for n in range(1, 41)]
ROUTES = ("/catalog/items", "/catalog/items/{id}", "/orders", "/orders/{id}", "/cart")


class Stop:
    """Set by SIGTERM/SIGINT; the loops poll it between traces or requests."""

    def __init__(self, max_seconds: float) -> None:
        self.deadline = time.monotonic() + max_seconds
        self.requested = False
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True

    def __bool__(self) -> bool:
        return self.requested or time.monotonic() > self.deadline


def _write_json(path: Path, document: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)  # the runner polls for the file: never half written


# ------------------------------------------------------------------------------ sdk client


def run_sdk(url: str, ready: Path, stop: Stop, seed: int) -> dict[str, Any]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

    class CountingExporter(OTLPSpanExporter):
        """The SDK's exporter, counting what the store acknowledged (exporter thread only)."""

        ok = 0
        failed = 0

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            result = super().export(spans)
            if result is SpanExportResult.SUCCESS:
                self.ok += len(spans)
            else:
                self.failed += len(spans)
            return result

    resource = Resource.create(
        {
            "service.name": "checkout",
            "service.version": "2.3.1",
            "deployment.environment.name": "production",
            "host.name": f"bench-{os.getpid()}",
        }
    )
    exporter = CountingExporter(endpoint=url, timeout=30)
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter,
            max_queue_size=65_536,
            schedule_delay_millis=50,
            max_export_batch_size=512,
        )
    )
    tracer = provider.get_tracer("benchmarks.store.client", "1")
    rng = random.Random(seed)
    _write_json(ready, {"pid": os.getpid()})
    started, cpu0 = time.monotonic(), time.process_time()
    created = 0
    while not stop:
        if created - exporter.ok - exporter.failed > MAX_PENDING_SPANS:
            time.sleep(0.001)  # closed loop: wait for the exporter to catch up
            continue
        created += _one_trace(tracer, rng)
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu0
    provider.shutdown()  # exports what is queued (at most MAX_PENDING_SPANS)
    return {
        "mode": "sdk",
        "created": created,
        "acknowledged": exporter.ok,
        "failed": exporter.failed,
        "seconds": seconds,
        "cpu_seconds": cpu,
    }


def _one_trace(tracer: Any, rng: random.Random) -> int:
    """A server span with a client call and two queries under it: 4 spans."""
    from opentelemetry.trace import SpanKind, Status, StatusCode

    tenant = TENANTS[min(int(rng.paretovariate(1.0)) - 1, len(TENANTS) - 1)]
    user = f"{tenant}-user-{rng.randrange(500):03d}"
    route = rng.choice(ROUTES)
    error = rng.random() < 0.01
    common = {"tenant.id": tenant, "enduser.id": user}
    server_attributes = {
        **common,
        "http.request.method": "GET",
        "http.route": route,
        "url.path": route.replace("{id}", str(rng.randrange(10_000))),
        "http.response.status_code": 500 if error else 200,
        "server.address": "checkout",
    }
    with tracer.start_as_current_span(
        f"GET {route}", kind=SpanKind.SERVER, attributes=server_attributes
    ) as root:
        with tracer.start_as_current_span(
            "GET catalog",
            kind=SpanKind.CLIENT,
            attributes={**common, "peer.service": "catalog", "http.request.method": "GET"},
        ):
            pass
        for table in ("items", "prices"):
            with tracer.start_as_current_span(
                f"SELECT {table}",
                kind=SpanKind.CLIENT,
                attributes={
                    **common,
                    "db.system.name": "postgresql",
                    "db.collection.name": table,
                    "db.operation.name": "SELECT",
                    "db.query.text": f"SELECT * FROM {table} WHERE id = $1",
                },
            ):
                pass
        if error:
            root.set_status(Status(StatusCode.ERROR))
    return 4


# ------------------------------------------------------------------------------ raw client


def raw_bodies(seed: int) -> list[tuple[bytes, int]]:
    """(protobuf body, span count) for RAW_BODIES synthetic requests of ~512 spans."""
    from o11ykit.store import synthetic

    rng = random.Random(seed)
    end = time.time_ns()
    requests = synthetic.requests(rng, RAW_BODIES * 512, end - 3600 * 10**9, end, 512)
    return [
        (
            r.SerializeToString(),
            sum(len(s.spans) for rs in r.resource_spans for s in rs.scope_spans),
        )
        for r in requests
    ]


def run_raw(url: str, ready: Path, stop: Stop, seed: int) -> dict[str, Any]:
    bodies = raw_bodies(seed)
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Type": "application/x-protobuf"}
    _write_json(ready, {"pid": os.getpid()})
    started, cpu0 = time.monotonic(), time.process_time()
    sent = acknowledged = busy = 0
    while not stop:
        body, spans = bodies[sent % len(bodies)]
        sent += 1
        connection.request("POST", parts.path, body, headers)
        response = connection.getresponse()
        response.read()
        if response.status == 200:
            acknowledged += spans
        elif response.status == 503:
            busy += 1
            time.sleep(0.01)
        else:
            raise RuntimeError(f"the store answered {response.status}")
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu0
    connection.close()
    return {
        "mode": "raw",
        "created": acknowledged,
        "acknowledged": acknowledged,
        "failed": 0,
        "busy_answers": busy,
        "seconds": seconds,
        "cpu_seconds": cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("sdk", "raw"), required=True)
    parser.add_argument("--url", required=True, help="the store's /v1/traces URL")
    parser.add_argument("--ready", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=120.0, help="hard bound")
    args = parser.parse_args(argv)
    stop = Stop(args.max_seconds)
    run = run_sdk if args.mode == "sdk" else run_raw
    _write_json(args.out, run(args.url, args.ready, stop, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
