"""OTLP/HTTP request bodies -> ExportTraceServiceRequest: content type, compression,
protobuf or OTLP JSON, each fault a 4xx with its reason (IngestError)."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

# Exporters send a few MiB at most; the limit stops a runaway client, not a real one.
MAX_BODY_BYTES = 16 * 1024 * 1024
PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_TYPES = frozenset({"application/json"})
_REQUEST_FIELDS = frozenset({"resourceSpans", "resource_spans"})


class IngestError(Exception):
    """A request the store refuses, with the HTTP status to answer and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_body(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    *,
    max_bytes: int = MAX_BODY_BYTES,
) -> ExportTraceServiceRequest:
    """Parse an OTLP/HTTP request body (protobuf or JSON, optionally gzip)."""
    return decode_request(body, content_type, content_encoding, max_bytes=max_bytes).request


class Decoded(NamedTuple):
    request: ExportTraceServiceRequest
    protobuf: Callable[[], bytes]  # the request as protobuf bytes, as the ingest log keeps it


def decode_request(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    *,
    max_bytes: int = MAX_BODY_BYTES,
) -> Decoded:
    """`decode_body`, and the request's protobuf bytes: the body itself when it was protobuf."""
    media = media_type(content_type)
    if media not in PROTOBUF_TYPES and media not in JSON_TYPES:
        given = f"unsupported Content-Type {content_type!r}" if content_type else "no Content-Type"
        raise IngestError(415, f"{given}: send application/x-protobuf or application/json")
    body = decompress(body, content_encoding, max_bytes)
    if media in JSON_TYPES:
        request = parse_json(body)
        return Decoded(request, request.SerializeToString)
    # The body as received: serializing the parsed request again cost 1 µs a span.
    return Decoded(parse_protobuf(body), lambda: body)


# Content-Encoding -> zlib's wbits for it. gzip is what OTLP/HTTP names; deflate (the zlib
# format, RFC 9110 8.4.1.2) is what OpenTelemetry Python's exporter sends with
# OTEL_EXPORTER_OTLP_COMPRESSION=deflate, and the Collector reads; x-gzip is gzip (RFC 9110).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    wbits = _WBITS.get(encoding)
    if wbits is None:
        raise IngestError(
            415, f"unsupported Content-Encoding {content_encoding!r}: use gzip or deflate"
        )
    out: list[bytes] = []
    size = 0
    rest = body
    try:
        # A loop, because gzip allows several members one after another (and whatever
        # follows a deflate stream must be another one too).
        while rest:
            inflater = zlib.decompressobj(wbits=wbits)
            # Bounded, so a small "gzip bomb" cannot inflate into gigabytes of memory.
            chunk = inflater.decompress(rest, max_bytes - size + 1)
            size += len(chunk)
            if size > max_bytes:
                raise IngestError(413, f"body over {max_bytes} bytes once decompressed")
            if not inflater.eof:
                raise IngestError(400, f"malformed {encoding} body: truncated")
            out.append(chunk)
            rest = inflater.unused_data
    except zlib.error as exc:
        raise IngestError(400, f"malformed {encoding} body: {exc}") from None
    return b"".join(out)


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError) as exc:
        raise IngestError(400, f"malformed protobuf ExportTraceServiceRequest: {exc}") from None
    return request


def parse_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise IngestError(400, f"malformed JSON: {exc}") from None
    if not isinstance(document, dict):
        raise IngestError(400, "the JSON body must be an object (an ExportTraceServiceRequest)")
    unknown = sorted(set(document) - _REQUEST_FIELDS)
    if unknown:
        raise IngestError(
            400, f"unknown field(s) in ExportTraceServiceRequest: {', '.join(unknown)}"
        )
    _hex_ids_to_base64(document)
    try:
        # Nested unknown fields are ignored, as OTLP asks of receivers (newer senders).
        return json_format.ParseDict(
            document, ExportTraceServiceRequest(), ignore_unknown_fields=True
        )
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise IngestError(400, f"invalid OTLP JSON: {exc}") from None


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """OTLP JSON writes ids as hex; protobuf's JSON mapping wants base64 for bytes fields."""
    for span in _json_objects(document, "resourceSpans", "scopeSpans", "spans"):
        _convert_ids(span, ("traceId", "spanId", "parentSpanId"))
        for link in _json_list(span, "links"):
            _convert_ids(link, ("traceId", "spanId"))


def _json_list(node: dict[str, Any], key: str) -> Iterator[dict[str, Any]]:
    # Both spellings, as json_format accepts both; anything malformed is left to ParseDict.
    for name in dict.fromkeys((key, _snake_case(key))):
        items = node.get(name)
        if isinstance(items, list):
            yield from (item for item in items if isinstance(item, dict))


def _json_objects(node: dict[str, Any], *path: str) -> Iterator[dict[str, Any]]:
    if not path:
        yield node
        return
    for child in _json_list(node, path[0]):
        yield from _json_objects(child, *path[1:])


def _snake_case(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _convert_ids(node: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        for name in dict.fromkeys((key, _snake_case(key))):
            value = node.get(name)
            if not isinstance(value, str):
                continue
            try:
                node[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            except ValueError:
                raise IngestError(400, f"invalid {key} {value[:64]!r}: not hex") from None
