"""OTLP requests with fixed ids and clocks for the store's tests, and a reader of its counts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from o11ykit.store.schema import DATABASE_NAME

# 2026-11-22T10:00:00Z, the base of every span's clock here.
T0 = 1_795_341_600_000_000_000
SECOND = 1_000_000_000
MS = 1_000_000


def kv(key: str, value: str | int | bool | float) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def trace_id(n: int) -> bytes:
    return n.to_bytes(16, "big")


def span_id(n: int) -> bytes:
    return n.to_bytes(8, "big")


def span(
    trace: int,
    ident: int,
    name: str = "op",
    *,
    parent: int = 0,
    kind: int = Span.SPAN_KIND_SERVER,
    start: int = T0,
    duration: int = 10 * MS,
    attributes: dict[str, str | int | bool | float] | None = None,
    error: bool = False,
) -> Span:
    return Span(
        trace_id=trace_id(trace),
        span_id=span_id(ident),
        parent_span_id=span_id(parent) if parent else b"",
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=start + duration,
        attributes=[kv(k, v) for k, v in (attributes or {}).items()],
        status=Status(code=Status.STATUS_CODE_ERROR, message="boom") if error else None,
    )


def request(
    spans: list[Span], service: str = "svc", **resource: str | int | bool
) -> ExportTraceServiceRequest:
    attributes = [kv("service.name", service), *(kv(k, v) for k, v in resource.items())]
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=attributes),
                scope_spans=[
                    ScopeSpans(
                        scope=InstrumentationScope(name="tests.store", version="1"), spans=spans
                    )
                ],
            )
        ]
    )


def many(count: int, service: str = "svc", first_trace: int = 1) -> ExportTraceServiceRequest:
    """`count` one-span traces, one millisecond apart."""
    return request(
        [
            span(
                first_trace + n,
                n + 1,
                f"op-{n % 3}",
                start=T0 + n * MS,
                attributes={"tenant.id": f"t{n % 4}"},
            )
            for n in range(count)
        ],
        service,
    )


def counts(directory: Path) -> dict[str, int]:
    """Row counts of every table, read through a connection of its own."""
    with sqlite3.connect(directory / DATABASE_NAME) as connection:
        return {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("spans", "span_attributes", "resources", "resource_attributes", "scopes")
        }
