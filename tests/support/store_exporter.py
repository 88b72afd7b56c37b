"""An application process exporting spans with the OpenTelemetry SDK's own OTLP exporters.

    python -m tests.support.store_exporter --protocol http --endpoint URL --service S --spans N
        [--error-tenant T] [--compression none|gzip|deflate]

Span n has tenant.id t{n % 3} and is named op-{n % 5}; with --error-tenant, that tenant's
spans, and only they, end with status ERROR. Prints `{"spans": N, "traces": N, "flushed":
true}` once every span is flushed; exits 1 if the flush failed, so a test never mistakes a
lost batch for a store that lost it.
"""

from __future__ import annotations

import argparse
import json
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import StatusCode


def exporter(protocol: str, endpoint: str, compression: str = "none"):
    if protocol == "grpc":
        import grpc
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        algorithms = {
            "none": grpc.Compression.NoCompression,
            "gzip": grpc.Compression.Gzip,
            "deflate": grpc.Compression.Deflate,
        }
        return OTLPSpanExporter(
            endpoint=endpoint, insecure=True, compression=algorithms[compression]
        )
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint, compression=Compression(compression))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=("http", "grpc"), default="http")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--spans", type=int, default=2000)
    parser.add_argument("--error-tenant", help="the tenant whose spans all fail")
    parser.add_argument("--compression", choices=("none", "gzip", "deflate"), default="none")
    args = parser.parse_args()
    provider = TracerProvider(resource=Resource.create({"service.name": args.service}))
    # A queue larger than the run: spans the SDK dropped would look like spans the store lost.
    processor = BatchSpanProcessor(
        exporter(args.protocol, args.endpoint, args.compression),
        max_queue_size=max(args.spans + 1, 512),
        max_export_batch_size=512,
    )
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("tests.store_exporter")
    trace_ids = set()
    for n in range(args.spans):
        tenant = f"t{n % 3}"
        with tracer.start_as_current_span(f"op-{n % 5}", attributes={"tenant.id": tenant}) as s:
            trace_ids.add(format(s.get_span_context().trace_id, "032x"))
            if tenant == args.error_tenant:
                s.set_status(StatusCode.ERROR, "declined")
    flushed = provider.force_flush(timeout_millis=30_000)
    provider.shutdown()
    print(json.dumps({"spans": args.spans, "traces": len(trace_ids), "flushed": flushed}))
    return 0 if flushed else 1


if __name__ == "__main__":
    sys.exit(main())
