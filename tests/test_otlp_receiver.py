"""The OTLP test receiver itself: real clients, real sockets, a real child process.

Spans are produced by the OpenTelemetry SDK and sent two ways:

* ``otlp-exporter``: the SDK's own OTLP exporters (``opentelemetry-exporter-otlp-proto-http`` /
  ``-grpc``). They are not o11ykit dependencies, so these cases skip where they are not installed.
* ``encoder``: the SDK's OTLP protobuf encoder (an o11ykit dependency) with a plain urllib or
  grpcio client, so the receiver is proven on every machine.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.support.otlp_receiver import REPO_ROOT, OtlpReceiver

pytestmark = pytest.mark.integration

HEADERS = {"x-honeycomb-team": "test-api-key", "x-tenant": "acme"}
RESOURCE = {"service.name": "receiver-test", "deployment.environment": "test"}
CLIENTS = pytest.mark.parametrize("client", ["otlp-exporter", "encoder"])
# Loopback only: an http_proxy set on the machine must never carry these requests elsewhere.
NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
GRPC_OPTIONS = (("grpc.enable_http_proxy", 0),)

Send = Callable[[bytes], None]


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------


class EncoderExporter(SpanExporter):
    """The SDK's OTLP encoder plus a caller-supplied way of putting the bytes on the wire."""

    def __init__(self, send: Send) -> None:
        self._send = send

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self._send(encode_spans(spans).SerializeToString())
        except (urllib.error.URLError, grpc.RpcError):
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def http_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """POSTs without raising on error statuses: the status is what the tests look at."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with NO_PROXY_OPENER.open(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def http_send(url: str, headers: dict[str, str], compress: bool) -> Send:
    def send(body: bytes) -> None:
        all_headers = {"Content-Type": "application/x-protobuf", **headers}
        if compress:
            body = gzip.compress(body)
            all_headers["Content-Encoding"] = "gzip"
        status, _, answer = http_post(url, body, all_headers)
        if status != 200:
            raise urllib.error.URLError(f"HTTP {status}: {answer!r}")

    return send


def grpc_export(
    target: str,
    request: trace_service_pb2.ExportTraceServiceRequest,
    headers: dict[str, str],
    compression: grpc.Compression = grpc.Compression.NoCompression,
) -> None:
    with grpc.insecure_channel(target, options=GRPC_OPTIONS) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        stub.Export(request, metadata=list(headers.items()), timeout=5, compression=compression)


def grpc_send(target: str, headers: dict[str, str], compress: bool) -> Send:
    compression = grpc.Compression.Gzip if compress else grpc.Compression.NoCompression

    def send(body: bytes) -> None:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        grpc_export(target, request, headers, compression)

    return send


def http_exporter(
    rx: OtlpReceiver, client: str, *, compress: bool = False, timeout: float = 5.0
) -> SpanExporter:
    if client == "encoder":
        return EncoderExporter(http_send(rx.http_traces_url, HEADERS, compress))
    module = pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    compression = pytest.importorskip("opentelemetry.exporter.otlp.proto.http").Compression
    session = pytest.importorskip("requests").Session()
    session.trust_env = False  # see NO_PROXY_OPENER
    return module.OTLPSpanExporter(
        endpoint=rx.http_traces_url,
        headers=HEADERS,
        timeout=timeout,
        compression=compression.Gzip if compress else compression.NoCompression,
        session=session,
    )


def grpc_exporter(rx: OtlpReceiver, client: str, *, compress: bool = False) -> SpanExporter:
    if client == "encoder":
        return EncoderExporter(grpc_send(rx.grpc_target, HEADERS, compress))
    module = pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
    return module.OTLPSpanExporter(
        endpoint=rx.grpc_endpoint,
        insecure=True,
        headers=HEADERS,
        timeout=5,
        compression=grpc.Compression.Gzip if compress else grpc.Compression.NoCompression,
        channel_options=GRPC_OPTIONS,
    )


def emit_trace(exporter: SpanExporter) -> None:
    """A SERVER span with a CLIENT child, exported synchronously as each span ends."""
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.otlp_receiver")
    try:
        with tracer.start_as_current_span("GET /orders", kind=SpanKind.SERVER) as server:
            server.set_attributes(
                {
                    "http.request.method": "GET",
                    "http.response.status_code": 500,
                    "load": 0.75,
                    "cache.hit": False,
                    "tags": ["a", "b"],
                }
            )
            server.add_event("retry", {"attempt": 2})
            server.set_status(Status(StatusCode.ERROR, "boom"))
            with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT):
                pass
    finally:
        provider.shutdown()


def by_name(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {span["name"]: span for span in spans}


def has_both_spans(spans: list[dict[str, Any]]) -> bool:
    return {"GET /orders", "SELECT orders"} <= set(by_name(spans))


def assert_trace_decoded(spans: list[dict[str, Any]]) -> None:
    server, child = by_name(spans)["GET /orders"], by_name(spans)["SELECT orders"]
    assert server["kind"] == "SERVER" and child["kind"] == "CLIENT"
    assert len(server["trace_id"]) == 32 and len(server["span_id"]) == 16
    assert child["trace_id"] == server["trace_id"]
    assert child["parent_span_id"] == server["span_id"]
    assert server["parent_span_id"] == ""
    assert server["attributes"] == {
        "http.request.method": "GET",
        "http.response.status_code": 500,
        "load": 0.75,
        "cache.hit": False,
        "tags": ["a", "b"],
    }
    assert server["events"] == [{"name": "retry", "attributes": {"attempt": 2}}]
    assert (server["status_code"], server["status_message"]) == ("ERROR", "boom")
    assert child["status_code"] == "UNSET"
    assert 0 < server["start_time_unix_nano"] <= server["end_time_unix_nano"]
    assert server["resource"].items() >= RESOURCE.items()
    assert server["scope"] == "tests.otlp_receiver"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[OtlpReceiver]:
    with OtlpReceiver(tmp_path) as rx:
        yield rx


# --------------------------------------------------------------------------------------------
# Spans arrive, decoded
# --------------------------------------------------------------------------------------------


@CLIENTS
def test_http_export_is_recorded_with_headers_resource_and_attributes(
    receiver: OtlpReceiver, client: str
) -> None:
    emit_trace(http_exporter(receiver, client))

    spans = receiver.wait_for_spans(has_both_spans, timeout=5)
    assert_trace_decoded(spans)
    request = receiver.requests()[0]
    assert request["transport"] == "http"
    assert request["path"] == "/v1/traces"
    assert request["content_type"] == "application/x-protobuf"
    assert request["content_encoding"] is None
    assert request["rejected"] is False
    assert request["headers"]["x-honeycomb-team"] == "test-api-key"
    assert request["headers"]["x-tenant"] == "acme"


@CLIENTS
def test_grpc_export_is_recorded_with_metadata_resource_and_attributes(
    receiver: OtlpReceiver, client: str
) -> None:
    emit_trace(grpc_exporter(receiver, client))

    spans = receiver.wait_for_spans(has_both_spans, timeout=5)
    assert_trace_decoded(spans)
    request = receiver.requests()[0]
    assert request["transport"] == "grpc"
    assert request["rejected"] is False
    assert request["headers"]["x-honeycomb-team"] == "test-api-key"
    assert request["headers"]["x-tenant"] == "acme"


@CLIENTS
def test_gzip_http_body_is_decompressed(receiver: OtlpReceiver, client: str) -> None:
    emit_trace(http_exporter(receiver, client, compress=True))

    assert_trace_decoded(receiver.wait_for_spans(has_both_spans, timeout=5))
    assert {r["content_encoding"] for r in receiver.requests()} == {"gzip"}


@CLIENTS
def test_gzip_grpc_call_is_decompressed(receiver: OtlpReceiver, client: str) -> None:
    emit_trace(grpc_exporter(receiver, client, compress=True))

    assert_trace_decoded(receiver.wait_for_spans(has_both_spans, timeout=5))


def test_json_body_with_hex_ids_is_decoded(receiver: OtlpReceiver) -> None:
    body = (
        b'{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name",'
        b'"value":{"stringValue":"json-svc"}}]},"scopeSpans":[{"scope":{"name":"s"},'
        b'"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",'
        b'"name":"json span","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}'
    )
    status, _, answer = http_post(
        receiver.http_traces_url, body, {"Content-Type": "application/json"}
    )

    assert (status, answer) == (200, b"{}")
    [span] = receiver.spans()
    assert span["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert span["span_id"] == "eee19b7ec3c1b174"
    assert (span["kind"], span["end_time_unix_nano"]) == ("SERVER", 2)
    assert span["resource"] == {"service.name": "json-svc"}


def test_http_success_answer_is_an_empty_protobuf_response(receiver: OtlpReceiver) -> None:
    body = trace_service_pb2.ExportTraceServiceRequest().SerializeToString()
    status, headers, answer = http_post(
        receiver.http_traces_url, body, {"Content-Type": "application/x-protobuf"}
    )

    assert status == 200
    assert headers["Content-Type"] == "application/x-protobuf"
    assert trace_service_pb2.ExportTraceServiceResponse.FromString(answer).ByteSize() == 0


def test_undecodable_body_and_wrong_path_are_refused(receiver: OtlpReceiver) -> None:
    protobuf = {"Content-Type": "application/x-protobuf"}
    bad_body = http_post(receiver.http_traces_url, b"\xff\xff not protobuf", protobuf)
    bad_gzip = http_post(
        receiver.http_traces_url, b"not gzip", {**protobuf, "Content-Encoding": "gzip"}
    )
    wrong_path = http_post(f"{receiver.http_endpoint}/v1/metrics", b"", protobuf)

    assert (bad_body[0], bad_gzip[0], wrong_path[0]) == (400, 400, 404)
    assert receiver.requests() == []


# --------------------------------------------------------------------------------------------
# Modes
# --------------------------------------------------------------------------------------------


@CLIENTS
def test_error500_records_the_attempt_as_rejected(tmp_path: Path, client: str) -> None:
    with OtlpReceiver(tmp_path, mode="error500") as rx:
        # HTTP 500 is not retryable for OTLP clients, so this fails after one attempt.
        emit_trace(http_exporter(rx, client))

        requests = rx.wait_for_requests(lambda r: len(r) >= 2, timeout=5)
        assert all(r["rejected"] for r in requests)
        assert has_both_spans([s for r in requests for s in r["spans"]])
        assert rx.spans() == []


def test_error_modes_answer_with_the_statuses_clients_retry_on(tmp_path: Path) -> None:
    body = trace_service_pb2.ExportTraceServiceRequest().SerializeToString()
    protobuf = {"Content-Type": "application/x-protobuf"}
    request = trace_service_pb2.ExportTraceServiceRequest()
    with OtlpReceiver(tmp_path, mode="error429") as rx:
        status, headers, _ = http_post(rx.http_traces_url, body, protobuf)
        assert (status, headers["Retry-After"]) == (429, "1")
        with pytest.raises(grpc.RpcError) as raised:
            grpc_export(rx.grpc_target, request, {})
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with OtlpReceiver(tmp_path, mode="error500") as rx:
        with pytest.raises(grpc.RpcError) as raised:
            grpc_export(rx.grpc_target, request, {})
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert [r["rejected"] for r in rx.requests()] == [True]


def test_sdk_http_exporter_retries_429_after_retry_after(tmp_path: Path) -> None:
    with OtlpReceiver(tmp_path, mode="error429") as rx:
        # With 1.8 s to spend and "Retry-After: 1" the exporter fits exactly one retry, with
        # 0.8 s of slack either side for a slow machine.
        exporter = http_exporter(rx, "otlp-exporter", timeout=1.8)
        started = time.monotonic()
        emit_trace(exporter)

        spans_per_attempt = [len(r["spans"]) for r in rx.requests()]
        assert time.monotonic() - started >= 1.0
        # Two spans, each exported on its own, each tried twice.
        assert spans_per_attempt == [1, 1, 1, 1]


def test_discard_mode_records_only_span_counts(tmp_path: Path) -> None:
    with OtlpReceiver(tmp_path, mode="discard") as rx:
        emit_trace(http_exporter(rx, "encoder"))
        emit_trace(grpc_exporter(rx, "encoder"))

        assert rx.requests() == [
            {"transport": "http", "span_count": 1},
            {"transport": "http", "span_count": 1},
            {"transport": "grpc", "span_count": 1},
            {"transport": "grpc", "span_count": 1},
        ]
        assert rx.spans() == []


def test_slow_mode_delays_the_answer_but_not_the_shutdown(tmp_path: Path) -> None:
    body = trace_service_pb2.ExportTraceServiceRequest().SerializeToString()
    protobuf = {"Content-Type": "application/x-protobuf"}
    with OtlpReceiver(tmp_path, mode="slow", slow_seconds=0.5) as rx:
        started = time.monotonic()
        assert http_post(rx.http_traces_url, body, protobuf)[0] == 200
        assert time.monotonic() - started >= 0.5

    with OtlpReceiver(tmp_path, mode="slow", slow_seconds=60) as rx:
        stuck = threading.Thread(
            target=http_post, args=(rx.http_traces_url, body, protobuf), daemon=True
        )
        stuck.start()
        rx.wait_for_requests(bool, timeout=5)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 3.0
    assert rx.returncode is not None


# --------------------------------------------------------------------------------------------
# The helper and the process
# --------------------------------------------------------------------------------------------


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_process_is_gone_after_the_block_even_when_it_raises(tmp_path: Path) -> None:
    with OtlpReceiver(tmp_path) as rx:
        pid = rx.pid
        assert pid is not None and process_exists(pid)
        assert rx.returncode is None
    assert not process_exists(pid)
    # SIGTERM is a clean exit, not a kill.
    assert rx.returncode == 0

    with pytest.raises(RuntimeError, match="test failed"), OtlpReceiver(tmp_path) as rx:
        pid = rx.pid
        raise RuntimeError("test failed")
    assert pid is not None and not process_exists(pid)


def test_wait_for_spans_times_out_with_a_readable_summary(receiver: OtlpReceiver) -> None:
    emit_trace(http_exporter(receiver, "encoder"))

    with pytest.raises(AssertionError) as raised:
        receiver.wait_for_spans(lambda spans: len(spans) > 5, timeout=0.2)

    message = str(raised.value)
    assert "spans never matched within 0.2 s" in message
    assert "2 request(s)" in message
    assert "GET /orders[SERVER, ERROR]" in message


def test_runs_as_a_script_too(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    script = REPO_ROOT / "tests" / "support" / "otlp_receiver.py"
    command = [sys.executable, str(script), "--record", str(tmp_path / "r.jsonl")]
    process = subprocess.Popen([*command, "--ready-file", str(ready)], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 15
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), f"receiver did not start (exit code {process.poll()})"
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0
