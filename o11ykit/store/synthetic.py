"""Realistic synthetic traces for measuring the store: `fill(store, spans=1_000_000, seed=1)`.

A small commerce system: the gateway takes each request and calls one or two services, which
call the database. Tenants follow a Zipf law (a few big ones, a long tail), each has its own
users, services roll out a new version halfway through the window, and errors and slow
requests cluster where real ones do (one tenant, one version, one route), so breakdowns and
searches have something to find.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from o11ykit.store.ingest import Store

SERVER, CLIENT, INTERNAL = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_INTERNAL
ERROR = Status.STATUS_CODE_ERROR
TENANTS = [f"tenant-{n:02d}" for n in range(1, 41)]
# route -> (method, downstream services, typical milliseconds)
ROUTES = {
    "/catalog/items": ("GET", ("catalog",), 12.0),
    "/catalog/items/{id}": ("GET", ("catalog",), 6.0),
    "/orders": ("POST", ("orders", "payments"), 45.0),
    "/orders/{id}": ("GET", ("orders",), 9.0),
    "/cart": ("PUT", ("orders", "catalog"), 20.0),
    "/payments/{id}/refund": ("POST", ("payments",), 60.0),
}
TABLES = {
    "catalog": ("items", "prices"),
    "orders": ("orders", "order_lines"),
    "payments": ("charges",),
}
VERSIONS = ("1.4.2", "1.5.0")
SCOPE = InstrumentationScope(name="o11ykit.synthetic", version="1")


@dataclass
class _Trace:
    tenant: str
    user: str
    route: str
    version: int  # index into VERSIONS
    error: bool
    start_ns: int


def fill(
    store: Store,
    spans: int = 1_000_000,
    seed: int = 1,
    *,
    end_ns: int | None = None,
    window_seconds: float = 6 * 3600,
    batch_spans: int = 512,
) -> int:
    """Write about `spans` spans (whole traces) spread over the `window_seconds` before
    `end_ns` (the last traces start just before it); returns how many."""
    rng = random.Random(seed)
    end = end_ns if end_ns is not None else time.time_ns()
    written = 0
    for request in requests(rng, spans, end - int(window_seconds * 1e9), end, batch_spans):
        written += store.ingest(request)
    return written


def requests(
    rng: random.Random, spans: int, start_ns: int, end_ns: int, batch_spans: int = 512
) -> Iterator[ExportTraceServiceRequest]:
    """Export requests of about `batch_spans` spans each, traces in time order."""
    weights = [1.0 / rank for rank in range(1, len(TENANTS) + 1)]
    pending: dict[tuple[str, int], list[Span]] = {}
    count = total = traces = 0
    now = float(start_ns)
    while total + count < spans:
        # Traces arrive at the rate that spends what is left of the window on the spans still
        # to make, at the spans a trace has averaged so far: a fixed guess at that average
        # (7, where it is about 6.3) once put a tenth of the traces past end_ns.
        average = (total + count) / traces if traces else 6.0
        left = max(1.0, (spans - total - count) / average)
        now = min(now + rng.expovariate(left / max(1.0, end_ns - now)), end_ns - 1.0)
        trace = _pick(rng, weights, int(now), start_ns, end_ns)
        traces += 1
        for service, span in _trace_spans(rng, trace):
            pending.setdefault((service, trace.version), []).append(span)
            count += 1
        if count >= batch_spans or total + count >= spans:
            yield _request(pending)
            total += count
            pending, count = {}, 0


def _pick(rng: random.Random, weights: list[float], now: int, start: int, end: int) -> _Trace:
    tenant = rng.choices(TENANTS, weights)[0]
    route = rng.choice(list(ROUTES))
    # The new version rolls out over the second half of the window.
    version = 1 if rng.random() < max(0.0, (now - start) / (end - start) - 0.5) * 2 else 0
    # Errors cluster: the new version fails refunds, and tenant-07 has a broken integration.
    error_rate = 0.01 + (0.3 if version == 1 and "refund" in route else 0.0)
    error_rate += 0.2 if tenant == "tenant-07" else 0.0
    return _Trace(
        tenant=tenant,
        user=f"{tenant}-user-{int(rng.paretovariate(1.2)) % 500:03d}",
        route=route,
        version=version,
        error=rng.random() < error_rate,
        start_ns=now,
    )


def _trace_spans(rng: random.Random, trace: _Trace) -> Iterator[tuple[str, Span]]:
    method, downstream, typical_ms = ROUTES[trace.route]
    trace_id = rng.randbytes(16)
    root_id = rng.randbytes(8)
    total_ns = int(rng.lognormvariate(0, 0.6) * typical_ms * 1e6)
    status = 500 if trace.error else 200
    attributes = [
        *_common(trace),
        _kv("http.request.method", method),
        _kv("http.route", trace.route),
        _kv("http.response.status_code", status),
    ]
    root = _span(
        trace_id,
        root_id,
        b"",
        f"{method} {trace.route}",
        SERVER,
        trace.start_ns,
        total_ns,
        attributes,
        trace.error,
    )
    yield "gateway", root
    offset = trace.start_ns + total_ns // 20
    share = total_ns * 9 // (10 * len(downstream))
    for service in downstream:
        client_id, server_id = rng.randbytes(8), rng.randbytes(8)
        name = f"{method} {service}"
        client_attributes = [
            *_common(trace),
            _kv("peer.service", service),
            _kv("server.address", service),
            _kv("http.request.method", method),
        ]
        yield (
            "gateway",
            _span(
                trace_id,
                client_id,
                root_id,
                name,
                CLIENT,
                offset,
                share,
                client_attributes,
                trace.error,
            ),
        )
        yield (
            service,
            _span(
                trace_id,
                server_id,
                client_id,
                f"{method} {trace.route}",
                SERVER,
                offset + share // 50,
                share * 9 // 10,
                attributes,
                trace.error,
            ),
        )
        yield from _db_spans(rng, trace, service, trace_id, server_id, offset, share)
        offset += share


def _db_spans(
    rng: random.Random,
    trace: _Trace,
    service: str,
    trace_id: bytes,
    parent: bytes,
    start: int,
    budget: int,
) -> Iterator[tuple[str, Span]]:
    queries = rng.randint(1, 3)
    for n in range(queries):
        table = rng.choice(TABLES[service])
        operation = "SELECT" if n or trace.route.startswith("/catalog") else "INSERT"
        attributes = [
            *_common(trace),
            _kv("db.system.name", "postgresql"),
            _kv("db.collection.name", table),
            _kv("db.operation.name", operation),
        ]
        failed = trace.error and n == queries - 1
        if failed:
            attributes.append(_kv("error.type", "psycopg.errors.QueryCanceled"))
        yield (
            service,
            _span(
                trace_id,
                rng.randbytes(8),
                parent,
                f"{operation} {table}",
                CLIENT,
                start + budget * (n + 1) // (queries + 2),
                budget // (queries + 3),
                attributes,
                failed,
            ),
        )


def _common(trace: _Trace) -> list[KeyValue]:
    return [_kv("tenant.id", trace.tenant), _kv("enduser.id", trace.user)]


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _span(
    trace_id: bytes,
    span_id: bytes,
    parent: bytes,
    name: str,
    kind: int,
    start: int,
    duration: int,
    attributes: list[KeyValue],
    error: bool,
) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=start + max(1000, duration),
        attributes=attributes,
        status=Status(code=ERROR) if error else None,
    )


def _request(pending: dict[tuple[str, int], list[Span]]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=_resource(service, version),
                scope_spans=[ScopeSpans(scope=SCOPE, spans=spans)],
            )
            for (service, version), spans in pending.items()
        ]
    )


def _resource(service: str, version: int) -> Resource:
    return Resource(
        attributes=[
            _kv("service.name", service),
            _kv("service.version", VERSIONS[version]),
            _kv("deployment.environment.name", "production"),
        ]
    )
