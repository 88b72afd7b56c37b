"""Stored spans -> OTLP JSON, shaped as Jaeger API v3 answers GET /api/v3/traces[/{id}].

The body is `{"result": TracesData}` (Jaeger's GRPCGatewayWrapper). OTLP JSON differs from
protobuf's generic JSON mapping in one place: trace and span ids are lowercase hex, not base64.
Enums (span kind, status code) are integers, as the OpenAPI document types them (`kind:
integer, format: enum`) and as Jaeger v2 emits them; 64-bit times are decimal strings.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from o11ykit.store.queries import StoredSpan, Traces


def result(traces: Traces) -> dict[str, Any]:
    """The whole response body: `{"result": {"resourceSpans": [...]}}`."""
    return {"result": traces_data(traces)}


def traces_data(traces: Traces) -> dict[str, Any]:
    """One ResourceSpans per resource per trace, traces in answer order (as Jaeger groups)."""
    resources: dict[int, dict[str, Any]] = {}
    scopes: dict[int, dict[str, Any]] = {}
    resource_spans = []
    for trace in traces.traces:
        for resource_id, by_scope in _group(trace).items():
            resource_data, resource_schema_url = traces.resources[resource_id]
            if resource_id not in resources:
                resources[resource_id] = _message(Resource.FromString(resource_data))
            scope_spans = []
            for scope_id, spans in by_scope.items():
                scope_data, scope_schema_url = traces.scopes[scope_id]
                if scope_id not in scopes:
                    scopes[scope_id] = _message(InstrumentationScope.FromString(scope_data))
                scope_spans.append(
                    _with_schema_url({"scope": scopes[scope_id], "spans": spans}, scope_schema_url)
                )
            resource_spans.append(
                _with_schema_url(
                    {"resource": resources[resource_id], "scopeSpans": scope_spans},
                    resource_schema_url,
                )
            )
    return {"resourceSpans": resource_spans}


def _with_schema_url(entry: dict[str, Any], schema_url: str) -> dict[str, Any]:
    if schema_url:
        entry["schemaUrl"] = schema_url
    return entry


def _group(trace: list[StoredSpan]) -> dict[int, dict[int, list[dict[str, Any]]]]:
    grouped: dict[int, dict[int, list[dict[str, Any]]]] = {}
    for stored in trace:
        by_scope = grouped.setdefault(stored.resource_id, {})
        by_scope.setdefault(stored.scope_id, []).append(span_json(stored.data))
    return grouped


def span_json(data: bytes) -> dict[str, Any]:
    span = Span.FromString(data)
    document = _message(span)
    document["traceId"] = span.trace_id.hex()
    document["spanId"] = span.span_id.hex()
    if span.parent_span_id:
        document["parentSpanId"] = span.parent_span_id.hex()
    for link, link_document in zip(span.links, document.get("links", ()), strict=True):
        link_document["traceId"] = link.trace_id.hex()
        link_document["spanId"] = link.span_id.hex()
    return document


def _message(message: Any) -> dict[str, Any]:
    return MessageToDict(message, use_integers_for_enums=True)
