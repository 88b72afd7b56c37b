"""A decoded request -> a Batch of rows: every span checked (ids, times, sizes), its
indexed attributes unpacked, on the receiver's thread. One bad span rejects the whole
request (IngestError) before anything is written.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from o11ykit.attribute_text import double_text
from o11ykit.store.decode import IngestError
from o11ykit.store.schema import INDEXED_SPAN_KEYS

# One attribute value this large is a bug (a whole payload logged into a span), not telemetry.
MAX_ATTRIBUTE_BYTES = 64 * 1024
UNKNOWN_SERVICE = "unknown_service"
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


@dataclass(frozen=True)
class ResourceRow:
    digest: bytes
    service: str
    attributes: dict[str, str]
    data: bytes
    schema_url: str = ""


@dataclass(frozen=True)
class ScopeRow:
    digest: bytes
    data: bytes
    schema_url: str


class SpanRow(NamedTuple):
    # A tuple rather than a dataclass: one is built for every span, and a frozen dataclass
    # took longer to build than the span took to decode.
    resource: int  # index into Batch.resources
    scope: int  # index into Batch.scopes
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes | None
    name: str
    kind: int
    start_ns: int
    duration_ns: int
    status_code: int
    data: bytes
    indexed: list[tuple[str, str]]


@dataclass
class Batch:
    resources: list[ResourceRow] = field(default_factory=list)
    scopes: list[ScopeRow] = field(default_factory=list)
    spans: list[SpanRow] = field(default_factory=list)
    # Every attribute key the batch's spans carry, indexed or not (schema's span_keys_seen).
    span_keys: set[str] = field(default_factory=set)


def value_text(value: AnyValue) -> str:
    """An attribute value as text, the way Jaeger compares `attributes` search values."""
    # Most values are non-empty strings: one field read answers them, in half the time of
    # asking first which field is set.
    text = value.string_value
    if text:
        return text
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return text
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return double_text(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind is None:
        return ""
    return json.dumps(_plain(value), separators=(",", ":"))


def _plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {pair.key: _plain(pair.value) for pair in value.kvlist_value.values}
    return value_text(value)


def batch_from_request(
    request: ExportTraceServiceRequest,
    *,
    indexed_keys: Iterable[str] = INDEXED_SPAN_KEYS,
    max_attribute_bytes: int = MAX_ATTRIBUTE_BYTES,
) -> Batch:
    """Validate every span and unpack what queries filter on; IngestError on the first fault."""
    keys = frozenset(indexed_keys)
    limit = max_attribute_bytes
    batch = Batch()
    for resource_spans in request.resource_spans:
        resource = _resource_row(resource_spans.resource, resource_spans.schema_url, limit)
        batch.resources.append(resource)
        resource_index = len(batch.resources) - 1
        for scope_spans in resource_spans.scope_spans:
            batch.scopes.append(_scope_row(scope_spans.scope, scope_spans.schema_url, limit))
            scope_index = len(batch.scopes) - 1
            for span in scope_spans.spans:
                batch.spans.append(
                    _span_row(span, resource_index, scope_index, keys, batch.span_keys, limit)
                )
    return batch


def _resource_row(resource: Resource, schema_url: str, limit: int) -> ResourceRow:
    if resource.ByteSize() > limit:
        _check_attributes(resource.attributes, limit, "resource")
    data = resource.SerializeToString(deterministic=True)
    attributes = {pair.key: value_text(pair.value) for pair in resource.attributes}
    # As for scopes, the schema URL is part of the identity. Without one the digest is the
    # resource's alone, as it was before resources kept their URL.
    identity = data + b"\0" + schema_url.encode() if schema_url else data
    return ResourceRow(
        digest=hashlib.sha256(identity).digest(),
        service=attributes.get("service.name") or UNKNOWN_SERVICE,
        attributes=attributes,
        data=data,
        schema_url=schema_url,
    )


def _scope_row(scope: InstrumentationScope, schema_url: str, limit: int) -> ScopeRow:
    if scope.ByteSize() > limit:
        _check_attributes(scope.attributes, limit, "scope")
    data = scope.SerializeToString(deterministic=True)
    # The schema URL is part of the identity: the same scope under two URLs is two rows.
    digest = hashlib.sha256(data + b"\0" + schema_url.encode()).digest()
    return ScopeRow(digest=digest, data=data, schema_url=schema_url)


_MAX_TIME_NS = 2**63 - 1


def _span_row(
    span: Span, resource: int, scope: int, keys: frozenset[str], seen: set[str], limit: int
) -> SpanRow:
    """The span's row, checked (IngestError on a fault); adds its attribute keys to `seen`.

    One pass that reads each field once: every read of a protobuf field builds a Python
    object, and this runs for every span received.
    """
    name = span.name
    trace_id = span.trace_id
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE_ID:
        raise IngestError(
            400,
            f"invalid trace id {trace_id.hex()!r} in span {name[:100]!r}: "
            "must be 16 bytes and not all zero",
        )
    span_id = span.span_id
    if len(span_id) != 8 or span_id == _ZERO_SPAN_ID:
        raise IngestError(
            400,
            f"invalid span id {span_id.hex()!r} in span {name[:100]!r}: "
            "must be 8 bytes and not all zero",
        )
    parent = span.parent_span_id
    if len(parent) not in (0, 8):
        raise IngestError(
            400,
            f"invalid parent span id {parent.hex()!r} in span {name[:100]!r}: "
            "must be 8 bytes or empty",
        )
    links = span.links
    if links:
        _check_links(links, name)
    start = span.start_time_unix_nano
    end = span.end_time_unix_nano
    # OTLP times are unsigned 64-bit; SQLite integers (and any real clock) stop at 2^63.
    if start > _MAX_TIME_NS or end > _MAX_TIME_NS:
        raise IngestError(
            400,
            f"invalid time in span {name[:100]!r}: start_time_unix_nano and end_time_unix_nano "
            f"must be at most {_MAX_TIME_NS} (Unix nanoseconds)",
        )
    data = span.SerializeToString()
    # Measuring each attribute costs more than the rest of ingest: only a span larger than
    # the limit can hold an attribute larger than it.
    if len(data) > limit:
        _check_span_attributes(span, limit)
    # One loop for both: measured as fast as the comprehension that only picked the indexed.
    indexed = []
    for pair in span.attributes:
        key = pair.key
        seen.add(key)
        if key in keys:
            value = pair.value
            # Most values are non-empty strings: one read, without calling value_text (which
            # begins with the same read, for its other callers).
            indexed.append((key, value.string_value or value_text(value)))
    # A key sent twice (OTLP forbids it; not every sender obeys) keeps its last value, as
    # decoding the span's bytes does (a dict): one index row, one rollup count, one group
    # for the span, whichever way a query reads it. ~0.2 µs a span.
    if len(indexed) > 1 and len(by_key := dict(indexed)) < len(indexed):
        indexed = list(by_key.items())
    # Positional: a NamedTuple built from keywords takes longer. The field order is SpanRow's.
    return SpanRow(
        resource,
        scope,
        trace_id,
        span_id,
        parent if parent and parent != _ZERO_SPAN_ID else None,
        name,
        span.kind,
        start,
        # A clock step can end a span before it starts; a negative duration helps nobody.
        max(0, end - start),
        span.status.code,
        data,
        indexed,
    )


def _check_links(links: Iterable[Span.Link], name: str) -> None:
    # A link points at one span: its ids are as strict as the span's own.
    for link in links:
        if len(link.trace_id) != 16 or link.trace_id == _ZERO_TRACE_ID:
            raise IngestError(
                400,
                f"invalid trace id {link.trace_id.hex()!r} in a link of span {name[:100]!r}:"
                " must be 16 bytes and not all zero",
            )
        if len(link.span_id) != 8 or link.span_id == _ZERO_SPAN_ID:
            raise IngestError(
                400,
                f"invalid span id {link.span_id.hex()!r} in a link of span {name[:100]!r}:"
                " must be 8 bytes and not all zero",
            )


def _check_span_attributes(span: Span, limit: int) -> None:
    name = span.name[:100]
    _check_attributes(span.attributes, limit, f"span {name!r}")
    for event in span.events:
        _check_attributes(event.attributes, limit, f"event {event.name[:100]!r}")
    for link in span.links:
        _check_attributes(link.attributes, limit, f"a link of span {name!r}")


def _check_attributes(pairs: Iterable[KeyValue], limit: int, where: str) -> None:
    for pair in pairs:
        if pair.ByteSize() > limit:
            raise IngestError(
                400, f"attribute {pair.key[:200]!r} of {where} is over the {limit}-byte limit"
            )
