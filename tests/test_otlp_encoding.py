"""o11ykit's OTLP bytes read back as the same message the SDK's own encoder produces."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.trace.span import SpanContext

from o11ykit.otlp_encoding import encode_request


class _Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list = []

    def export(self, spans):
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def _varied_spans() -> list:
    keep = _Keep()
    resources = [
        Resource({"service.name": "a", "process.pid": os.getpid(), "service.instance.id": "i"}),
        Resource({"service.name": "b", "list": ("x", "y")}, schema_url="https://schema/1"),
    ]
    for resource in resources:
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(keep))
        for scope, version in (("scope.one", "1.0"), ("scope.two", None)):
            tracer = provider.get_tracer(scope, version)
            with tracer.start_as_current_span(
                "root",
                kind=SpanKind.SERVER,
                attributes={
                    "str": "value",
                    "empty": "",
                    "int": 42,
                    "negative": -7,
                    "big": 2**62,
                    "float": 1.5,
                    "bool_true": True,
                    "bool_false": False,
                    "strings": ["a", "b"],
                    "ints": [1, 2],
                    "unicode": "テナント",
                },
            ) as root:
                root.add_event("cache miss", {"key": "k1", "zero": 0})
                root.set_status(Status(StatusCode.ERROR, "boom"))
                remote = SpanContext(0xABC, 0xDEF, is_remote=True)
                with tracer.start_as_current_span(
                    "child", kind=SpanKind.CLIENT, links=[Link(remote, {"why": "retry"})]
                ):
                    pass
    parent = SpanContext(
        0x1234,
        0x5678,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("v", "1")]),
    )
    tracer = TracerProvider(resource=resources[0], shutdown_on_exit=False)
    tracer.add_span_processor(SimpleSpanProcessor(keep))
    with tracer.get_tracer("t").start_as_current_span(
        "remote-parent", context=trace.set_span_in_context(trace.NonRecordingSpan(parent))
    ) as span:
        span.set_status(StatusCode.OK)
    return keep.spans


def test_bytes_parse_to_the_same_message_as_the_sdk_encoder() -> None:
    spans = _varied_spans()
    assert len(spans) == 9
    ours = ExportTraceServiceRequest.FromString(encode_request(spans, (os.getpid(), "i")))
    theirs = encode_spans(spans)
    assert ours == theirs


def test_cached_pairs_do_not_leak_between_spans() -> None:
    spans = _varied_spans()
    first = encode_request(spans, (os.getpid(), "i"))
    assert encode_request(spans, (os.getpid(), "i")) == first


def test_the_resource_carries_this_processs_identity() -> None:
    spans = _varied_spans()[:1]
    parsed = ExportTraceServiceRequest.FromString(encode_request(spans, (4242, "worker-2")))
    attributes = {kv.key: kv.value for kv in parsed.resource_spans[0].resource.attributes}
    assert attributes["process.pid"].int_value == 4242
    assert attributes["service.instance.id"].string_value == "worker-2"


def test_scrubbing_while_encoding_matches_scrubbing_first() -> None:
    from o11ykit.otlp_encoding import SpanEncoder
    from o11ykit.privacy import REDACTED, Scrubber, scrubbed

    keep = _Keep()
    provider = TracerProvider(resource=Resource({"service.name": "s"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("t")
    for query in ("q=1&token=first", "q=2&token=second"):
        with tracer.start_as_current_span(
            "GET", attributes={"url.query": query, "password": "hunter2", "tenant.id": "acme"}
        ) as span:
            span.add_event("login", {"session_id": "abc", "ok": True})
    scrubber = Scrubber()
    encoder = SpanEncoder(scrubber)
    for _ in range(2):  # the second pass is served from the caches
        body = encoder.encode(keep.spans, (os.getpid(), "i"))
        parsed = ExportTraceServiceRequest.FromString(body)
        assert parsed == encode_spans(scrubbed(keep.spans, scrubber))
    for secret in (b"first", b"second", b"hunter2", b"abc"):
        assert secret not in body
    assert REDACTED.encode() in body
    # A different scrubber gets its own decisions, not the cached ones.
    lenient = SpanEncoder(Scrubber(allow=["password"]))
    assert b"hunter2" in lenient.encode(keep.spans, (os.getpid(), "i"))


def test_equal_values_of_different_types_keep_their_type() -> None:
    from o11ykit.otlp_encoding import SpanEncoder

    keep = _Keep()
    provider = TracerProvider(resource=Resource({"service.name": "s"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("t")
    for value in (True, 1, 1.0, (True,), (1,)):
        with tracer.start_as_current_span("s", attributes={"retry": value}):
            pass
    encoder = SpanEncoder()  # one encoder: the second span onwards meets a warm cache
    parsed = ExportTraceServiceRequest.FromString(encoder.encode(keep.spans, (os.getpid(), "i")))
    assert parsed == encode_spans(keep.spans)


def test_status_descriptions_are_scrubbed_on_the_wire() -> None:
    from o11ykit.otlp_encoding import SpanEncoder
    from o11ykit.privacy import REDACTED, Scrubber

    keep = _Keep()
    provider = TracerProvider(resource=Resource({"service.name": "s"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(keep))
    with provider.get_tracer("t").start_as_current_span("GET") as span:
        span.set_status(
            Status(
                StatusCode.ERROR,
                "HTTPError: 401 Client Error: Unauthorized for url: "
                "https://api.example.com/v1/items?api_key=k3y&page=2",
            )
        )
    body = SpanEncoder(Scrubber()).encode(keep.spans, (os.getpid(), "i"))
    status = ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0]
    description = status.spans[0].status.message
    assert b"k3y" not in body
    assert description.endswith(f"?api_key={REDACTED}&page=2")
