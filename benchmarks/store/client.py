"""One ingest client process for the store benchmark; the runner starts several.

    python -m benchmarks.store.client --mode exporter|sdk|raw --url URL --ready FILE --out FILE

``exporter``: the SDK's own OTLP/HTTP exporter (``OTLPSpanExporter``) sending 512-span
batches of spans the SDK made before the clock started, one export after another: every
batch is encoded and POSTed by the exporter, as it is in an application, but creating the
spans is not charged to the store's two cores.
``sdk``: a whole application pipeline (tracer, ``BatchSpanProcessor``, ``OTLPSpanExporter``)
creating traces of realistic spans as fast as the pipeline takes them.
``raw``: pre-built ~512-span protobuf bodies POSTed one after another over one kept-alive
connection, so nearly all of the CPU spent is the store's: its ceiling.
``fresh``: like ``raw``, but each body is made just before it is sent (synthetic traces
starting in the last second, ~15 µs a span of client CPU): new trace ids and start times
that move on, as live traffic has. For long runs: repeating the same bodies, as ``raw``
does, puts every span again at the same places of the start-ordered and trace-id indexes,
and writes slow down as the store grows (in-process, 21 -> 59 µs a span from 100,000 to
1,000,000 spans, where fresh traces stay flat).

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# The SDK client never lets more than this many spans wait in its queue: an open-loop
# producer would fill a large queue and drop spans, burning CPU the store shares.
MAX_PENDING_SPANS = 8192
RAW_BODIES = 16
# The raw bodies' spans start within the last seconds, as live traffic does. Spread over an
# hour (as before 2026-12-03), each group of batches touched ~30 minutes of rollups and most
# of its cells went into 10-minute blocks already summed: a backfill's cost, not live ingest's.
RAW_WINDOW_SECONDS = 10
# The BatchSpanProcessor's default batch, in every mode.
EXPORT_BATCH_SPANS = 512
# Distinct batches the exporter client cycles through (made by the SDK before it starts).
EXPORTER_BATCHES = 16

# What OTLP/HTTP calls retryable (429, 502, 503, 504): a store shedding load, not a fault.
RETRYABLE = frozenset({429, 502, 503, 504})

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


def _provider() -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create(
        {
            "service.name": "checkout",
            "service.version": "2.3.1",
            "deployment.environment.name": "production",
            "host.name": f"bench-{os.getpid()}",
        }
    )
    return TracerProvider(resource=resource)


def run_exporter(url: str, ready: Path, stop: Stop, seed: int) -> dict[str, Any]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    made = InMemorySpanExporter()
    provider = _provider()
    provider.add_span_processor(SimpleSpanProcessor(made))
    tracer = provider.get_tracer("benchmarks.store.client", "1")
    rng = random.Random(seed)
    created = 0
    while created < EXPORTER_BATCHES * EXPORT_BATCH_SPANS:
        created += _one_trace(tracer, rng)
    spans = made.get_finished_spans()
    batches = [spans[i : i + EXPORT_BATCH_SPANS] for i in range(0, len(spans), EXPORT_BATCH_SPANS)]
    exporter = OTLPSpanExporter(endpoint=url, timeout=30)
    _write_json(ready, {"pid": os.getpid()})
    started, cpu0 = time.monotonic(), time.process_time()
    exports = acknowledged = failed = 0
    while not stop:
        batch = batches[exports % len(batches)]
        exports += 1
        if exporter.export(batch) is SpanExportResult.SUCCESS:
            acknowledged += len(batch)
        else:
            failed += len(batch)
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu0
    exporter.shutdown()
    return {
        "mode": "exporter",
        "created": acknowledged + failed,
        "acknowledged": acknowledged,
        "failed": failed,
        "seconds": seconds,
        "cpu_seconds": cpu,
    }


def run_sdk(url: str, ready: Path, stop: Stop, seed: int) -> dict[str, Any]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import ReadableSpan
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

    exporter = CountingExporter(endpoint=url, timeout=30)
    provider = _provider()
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter,
            max_queue_size=65_536,
            schedule_delay_millis=50,
            max_export_batch_size=EXPORT_BATCH_SPANS,
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
    start = end - RAW_WINDOW_SECONDS * 10**9
    requests = synthetic.requests(rng, RAW_BODIES * 512, start, end, 512)
    return [
        (
            r.SerializeToString(),
            sum(len(s.spans) for rs in r.resource_spans for s in rs.scope_spans),
        )
        for r in requests
    ]


def run_raw(url: str, ready: Path, stop: Stop, seed: int) -> dict[str, Any]:
    bodies = raw_bodies(seed)
    return _post_bodies(url, ready, stop, "raw", lambda sent: bodies[sent % len(bodies)])


def run_fresh(url: str, ready: Path, stop: Stop, seed: int) -> dict[str, Any]:
    from o11ykit.store import synthetic

    rng = random.Random(seed)

    def body(sent: int) -> tuple[bytes, int]:
        now = time.time_ns()
        (request,) = synthetic.requests(rng, EXPORT_BATCH_SPANS, now - 10**9, now, 10**9)
        spans = sum(len(s.spans) for rs in request.resource_spans for s in rs.scope_spans)
        return request.SerializeToString(), spans

    return _post_bodies(url, ready, stop, "fresh", body)


def _post_bodies(
    url: str, ready: Path, stop: Stop, mode: str, body: Callable[[int], tuple[bytes, int]]
) -> dict[str, Any]:
    """POST `body(n)` (protobuf bytes, span count) for n = 0, 1, ... until stopped."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Type": "application/x-protobuf"}
    _write_json(ready, {"pid": os.getpid()})
    started, cpu0 = time.monotonic(), time.process_time()
    sent = acknowledged = busy = 0
    while not stop:
        payload, spans = body(sent)
        sent += 1
        connection.request("POST", parts.path, payload, headers)
        response = connection.getresponse()
        response.read()
        if response.status == 200:
            acknowledged += spans
        elif response.status in RETRYABLE:
            busy += 1
            time.sleep(0.01)
        else:
            raise RuntimeError(f"the store answered {response.status}")
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu0
    connection.close()
    return {
        "mode": mode,
        "created": acknowledged,
        "acknowledged": acknowledged,
        "failed": 0,
        "busy_answers": busy,
        "seconds": seconds,
        "cpu_seconds": cpu,
    }


MODES = {"exporter": run_exporter, "sdk": run_sdk, "raw": run_raw, "fresh": run_fresh}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=tuple(MODES), required=True)
    parser.add_argument("--url", required=True, help="the store's /v1/traces URL")
    parser.add_argument("--ready", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=120.0, help="hard bound")
    args = parser.parse_args(argv)
    stop = Stop(args.max_seconds)
    _write_json(args.out, MODES[args.mode](args.url, args.ready, stop, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
