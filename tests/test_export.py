"""Export over real sockets to a real OTLP receiver: HTTP and gRPC, headers, Honeycomb keys."""

from __future__ import annotations

import collections
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from o11ykit.backends import honeycomb
from o11ykit.config import load_settings
from o11ykit.pipeline import BoundedBatchProcessor, SafeSpanExporter
from o11ykit.privacy import Scrubber
from o11ykit.resource import build_resource
from o11ykit.setup import build_transport
from o11ykit.transport import ExportFailure
from tests.support.byte_relay import ByteRelay
from tests.support.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.integration
CLASSIC_KEY = "0123456789abcdef0123456789abcdef"
ENVIRONMENT_KEY = "hcxik_01hqk4k20cjeh63wca8vva5stw"


class _Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list = []

    def export(self, spans):
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def _spans(settings, count: int = 1):
    keep = _Keep()
    provider = TracerProvider(resource=build_resource(settings), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("test")
    for index in range(count):
        with tracer.start_as_current_span(
            f"work-{index}", attributes={"tenant.id": "acme", "url.query": "a=1&token=s3cr3t"}
        ):
            pass
    return keep.spans


def _export_through_pipeline(settings) -> SafeSpanExporter:
    _, transport = build_transport(settings)
    exporter = SafeSpanExporter(transport, Scrubber(), settings.export_timeout)
    processor = BoundedBatchProcessor(exporter, schedule_delay=0.05)
    for span in _spans(settings, 3):
        processor.on_end(span)
    processor.shutdown(5.0)
    return exporter


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_otlp_export_arrives_scrubbed_with_headers(tmp_path, protocol: str) -> None:
    with OtlpReceiver(tmp_path) as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        settings = load_settings(
            {
                "service_name": "svc",
                "backend": "otlp",
                "endpoint": endpoint,
                "protocol": protocol,
                "headers": {"x-team": "blue"},
            },
            {},
        )
        exporter = _export_through_pipeline(settings)
        spans = receiver.wait_for_spans(lambda s: len(s) >= 3)
        request = receiver.requests()[0]
    assert exporter.stats.exported == 3 and exporter.stats.dropped == 0
    assert request["transport"] == ("grpc" if protocol == "grpc" else "http")
    assert request["headers"]["x-team"] == "blue"
    assert {s["name"] for s in spans} == {"work-0", "work-1", "work-2"}
    assert spans[0]["resource"]["service.name"] == "svc"
    assert spans[0]["attributes"]["tenant.id"] == "acme"
    assert "s3cr3t" not in str(receiver.requests())


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_gzip_compression_arrives_whole_in_a_fraction_of_the_bytes(tmp_path, protocol: str) -> None:
    """The same batch with compression none, then gzip, each through a relay that counts the
    bytes on the wire; the receiver decodes both."""
    sent = {}
    with OtlpReceiver(tmp_path) as receiver:
        port = receiver.grpc_port if protocol == "grpc" else receiver.http_port
        for compression in ("none", "gzip"):
            with ByteRelay(port) as relay:
                settings = load_settings(
                    {
                        "service_name": f"svc-{compression}",
                        "backend": "otlp",
                        "endpoint": f"http://127.0.0.1:{relay.port}",
                        "protocol": protocol,
                        "compression": compression,
                    },
                    {},
                )
                _, transport = build_transport(settings)
                exporter = SafeSpanExporter(transport, Scrubber(), settings.export_timeout)
                assert exporter.export(_spans(settings, 200)).name == "SUCCESS"
                exporter.shutdown()
                sent[compression] = relay.sent
        spans = receiver.wait_for_spans(lambda s: len(s) >= 400)
        requests = receiver.requests()
    by_service = collections.Counter(s["resource"]["service.name"] for s in spans)
    assert by_service == {"svc-none": 200, "svc-gzip": 200}
    assert sent["gzip"] * 2 < sent["none"], sent  # 8.6 kB against 25.9 kB over HTTP
    if protocol == "http/protobuf":  # grpcio hides grpc-encoding from the servicer
        encodings = {
            r["spans"][0]["resource"]["service.name"]: r["content_encoding"] for r in requests
        }
        assert encodings == {"svc-none": None, "svc-gzip": "gzip"}


@pytest.mark.parametrize(
    ("key", "dataset_expected"), [(CLASSIC_KEY, True), (ENVIRONMENT_KEY, False)]
)
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_honeycomb_headers_by_key_kind(
    tmp_path, key: str, dataset_expected: bool, protocol: str
) -> None:
    with OtlpReceiver(tmp_path) as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        settings = load_settings(
            {
                "service_name": "shop",
                "backend": "honeycomb",
                "endpoint": endpoint,
                "protocol": protocol,
                "honeycomb_api_key": key,
                "honeycomb_dataset": "traces",
            },
            {},
        )
        _export_through_pipeline(settings)
        receiver.wait_for_spans(lambda s: len(s) >= 3)
        headers = receiver.requests()[0]["headers"]
    assert headers["x-honeycomb-team"] == key
    assert ("x-honeycomb-dataset" in headers) is dataset_expected
    if dataset_expected:
        assert headers["x-honeycomb-dataset"] == "traces"


def test_honeycomb_endpoints_and_key_from_environment() -> None:
    us = load_settings({"backend": "honeycomb"}, {"HONEYCOMB_API_KEY": ENVIRONMENT_KEY})
    eu = load_settings(
        {"backend": "honeycomb", "honeycomb_region": "eu"}, {"HONEYCOMB_API_KEY": ENVIRONMENT_KEY}
    )
    assert build_transport(us)[1].target == "https://api.honeycomb.io/v1/traces"
    assert build_transport(eu)[1].target == "https://api.eu1.honeycomb.io/v1/traces"
    assert honeycomb.headers(us) == {"x-honeycomb-team": ENVIRONMENT_KEY}


def test_honeycomb_without_key_is_a_clear_error_when_asked_for_in_code() -> None:
    from o11ykit.config import ConfigError

    with pytest.raises(ConfigError, match="HONEYCOMB_API_KEY"):
        build_transport(load_settings({"backend": "honeycomb"}, {}))
    # Asked for only in the environment: reported, and nothing is exported.
    assert build_transport(load_settings({}, {"O11YKIT_BACKEND": "honeycomb"})) == ("none", None)


@pytest.mark.parametrize(
    ("environ", "backend", "target"),
    [
        ({}, "local", "http://127.0.0.1:4318/v1/traces"),
        ({"O11YKIT_PROTOCOL": "grpc"}, "local", "127.0.0.1:4317"),  # the store's gRPC port
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
            "otlp",
            "http://collector:4318/v1/traces",
        ),
        ({"O11YKIT_BACKEND": "jaeger"}, "jaeger", "http://localhost:4318/v1/traces"),
        ({"O11YKIT_BACKEND": "jaeger", "O11YKIT_PROTOCOL": "grpc"}, "jaeger", "localhost:4317"),
    ],
)
def test_backend_choice_and_default_endpoints(environ, backend: str, target: str) -> None:
    name, transport = build_transport(load_settings({}, environ))
    assert (name, transport.target) == (backend, target)


def test_rejections_are_counted_not_raised(tmp_path) -> None:
    with OtlpReceiver(tmp_path, mode="error500") as receiver:
        settings = load_settings({"backend": "otlp", "endpoint": receiver.http_endpoint}, {})
        exporter = _export_through_pipeline(settings)
    assert exporter.stats.exported == 0
    assert exporter.stats.dropped_export_failed == 3
    assert "HTTP 500" in (exporter.stats.last_error or "")


def test_export_failures_never_show_the_endpoints_credentials(caplog) -> None:
    from tests.conftest import free_port

    endpoint = f"http://bob:pa55@127.0.0.1:{free_port()}/v1/traces?api_key=k3y"
    settings = load_settings({"backend": "otlp", "endpoint": endpoint}, {})
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        exporter = _export_through_pipeline(settings)
    assert exporter.stats.failed_batches >= 1
    shown = f"{exporter.stats.last_error} {exporter.transport.target} {caplog.text}"
    assert "connection refused" in shown
    assert "pa55" not in shown and "k3y" not in shown and "bob" not in shown


@pytest.mark.parametrize(
    ("settings", "environ", "target"),
    [
        (
            {"endpoint": "https://collector.example", "protocol": "grpc"},
            {},
            "collector.example:443",
        ),
        (
            {"endpoint": "http://collector.example", "protocol": "grpc"},
            {},
            "collector.example:4317",
        ),
        (
            {"endpoint": "https://collector.example:4317", "protocol": "grpc"},
            {},
            "collector.example:4317",
        ),
        (
            {"backend": "honeycomb", "protocol": "grpc"},
            {"HONEYCOMB_API_KEY": ENVIRONMENT_KEY},
            "api.honeycomb.io:443",
        ),
    ],
)
def test_grpc_port_follows_the_scheme_when_none_is_given(settings, environ, target) -> None:
    _, transport = build_transport(load_settings({"backend": "otlp", **settings}, environ))
    assert transport.target == target


def _trickling_server(stop) -> tuple[int, object]:
    """A peer that accepts, reads the request, then answers one byte every 0.2 s: each read
    returns well within a socket timeout, yet the answer never ends."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000:
                if stop.wait(0.2):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], (listener, thread)


@pytest.mark.serial  # a fixed time bound, which another test's load would move
def test_a_peer_that_trickles_its_answer_is_cut_off_at_the_export_timeout() -> None:
    import threading
    import time

    from o11ykit.transport import ExportFailure, HttpTransport

    stop = threading.Event()
    port, (listener, thread) = _trickling_server(stop)
    transport = HttpTransport(f"http://127.0.0.1:{port}/v1/traces", {})
    started = time.monotonic()
    try:
        with pytest.raises(ExportFailure) as failed:
            transport.post(b"\x0a\x00", timeout=1.0)
        took = time.monotonic() - started
    finally:
        stop.set()
        transport.close()
        listener.close()
        thread.join(5)
    assert failed.value.kind == "timed out", failed.value
    assert took < 2.0, took  # until 2026-12-06: about 10 s, the socket timeout per byte


def test_an_idle_kept_alive_connection_past_descriptor_1023_is_reused(tmp_path) -> None:
    # select() cannot watch a descriptor past 1023, and the idle check read that as "closed
    # by the peer": a busy server (many descriptors open) opened a connection per batch.
    import os
    import resource

    from o11ykit.transport import HttpTransport

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the open file limit ({hard}) is below the 1,200 this test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        with OtlpReceiver(tmp_path) as receiver:
            transport = HttpTransport(receiver.http_endpoint + "/v1/traces", {})
            try:
                transport.post(b"", timeout=5.0)
                first = transport._connection
                assert first is not None and first.sock.fileno() > 1023
                transport.post(b"", timeout=5.0)
                assert transport._connection is first
            finally:
                transport.close()
    finally:
        for descriptor in filler:
            os.close(descriptor)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_an_ipv6_grpc_endpoint_keeps_its_brackets() -> None:
    from o11ykit.transport import GrpcTransport

    assert GrpcTransport("http://[::1]:4317", {}).target == "[::1]:4317"
    assert GrpcTransport("https://[2001:db8::1]", {}).target == "[2001:db8::1]:443"


def test_an_unexpected_export_error_is_recorded_without_the_secrets_its_text_quotes() -> None:
    from opentelemetry.sdk.trace import TracerProvider as Provider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    class Exploding:
        target = "http://collector:4318/v1/traces"

        def send(self, spans, timeout, scrubber) -> None:
            raise RuntimeError("bad proxy for https://bob:pa55@proxy.example/?token=k3y")

        def close(self) -> None:
            pass

    kept = InMemorySpanExporter()
    provider = Provider()
    provider.add_span_processor(SimpleSpanProcessor(kept))
    with provider.get_tracer("t").start_as_current_span("s"):
        pass
    exporter = SafeSpanExporter(Exploding(), Scrubber(), 1.0)
    assert exporter.export(kept.get_finished_spans()) == SpanExportResult.FAILURE
    said = exporter.stats.last_error
    assert said.startswith("unexpected RuntimeError: bad proxy for https://")
    assert "pa55" not in said and "k3y" not in said


def test_the_queue_full_warning_counts_the_spans_dropped_not_the_queue_size(caplog) -> None:
    from tests.conftest import free_port

    # Nothing listens on the port: the first batch fails (2 dropped), then a full queue
    # drops more. The warning must say how many were dropped, as the backend warning does.
    transport = build_transport(
        load_settings({"backend": "otlp", "endpoint": f"http://127.0.0.1:{free_port()}"}, {})
    )[1]
    exporter = SafeSpanExporter(transport, Scrubber(), 2.0)
    processor = BoundedBatchProcessor(exporter, max_queue_size=2, schedule_delay=60.0)
    settings = load_settings({"service_name": "svc"}, {})
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        for span in _spans(settings, 2):
            processor.on_end(span)
        assert processor.force_flush(2000)
        for span in _spans(settings, 5):
            processor.on_end(span)
        queue_full = [r.getMessage() for r in caplog.records if "queue is full" in r.getMessage()]
        processor.shutdown(1.0)

    assert exporter.stats.dropped_export_failed >= 2 and exporter.stats.dropped_queue_full == 3
    # Until 2026-12-07: "the export queue is full (2 spans); dropping spans until it drains".
    assert queue_full == [
        "o11ykit: the export queue is full (max_queue_size=2): spans are dropped until it "
        "drains; 3 dropped so far. The service is unaffected."
    ], queue_full


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_closed_transport_opens_no_new_connection(protocol) -> None:
    # A send taken before shutdown that reaches the transport after close() must not open
    # a connection (or a channel) that nothing would close again.
    import socket

    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.5)
        endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
        settings = load_settings(
            {"backend": "otlp", "endpoint": endpoint, "protocol": protocol}, {}
        )
        transport = build_transport(settings)[1]
        transport.close()
        with pytest.raises(ExportFailure, match="was shut down") as refused:
            transport.post(b"", timeout=1.0)
        assert refused.value.kind == "cancelled"
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing connected


def test_a_close_between_taking_the_connection_and_sending_sends_nothing(monkeypatch) -> None:
    # close() from shutdown may come after the send took its connection but before the
    # exchange began: the send must see it, not connect again.
    import socket

    from o11ykit.transport import HttpTransport

    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.5)
        transport = HttpTransport(f"http://127.0.0.1:{listener.getsockname()[1]}/v1/traces", {})
        exchange = HttpTransport._exchange

        def closed_first(self, *args):
            self.close()
            return exchange(self, *args)

        monkeypatch.setattr(HttpTransport, "_exchange", closed_first)
        with pytest.raises(ExportFailure, match="was shut down"):
            transport.post(b"", timeout=1.0)
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing connected


@pytest.mark.parametrize("shutdown_runs", ["before the append", "after the append"])
def test_a_span_ended_while_shutdown_runs_is_counted_once(monkeypatch, shutdown_runs) -> None:
    # on_end checks `closed`, then appends without a lock: shutdown may run in between.
    # Each span ended must be counted once, exported or lost, never twice, never not at all.
    transport = build_transport(
        load_settings({"backend": "otlp", "endpoint": "http://127.0.0.1:9"}, {})
    )[1]
    exporter = SafeSpanExporter(transport, Scrubber(), 1.0)
    processor = BoundedBatchProcessor(exporter, schedule_delay=60.0)
    settings = load_settings({"service_name": "svc"}, {})
    first, second = _spans(settings, 2)
    processor.on_end(first)  # starts the processor in this process

    class ShutdownDuringAppend(collections.deque):
        def append(self, span) -> None:  # on_end has checked `closed` already
            if shutdown_runs == "before the append":
                processor.shutdown(0.1)
            super().append(span)
            if shutdown_runs == "after the append":
                processor.shutdown(0.1)

    monkeypatch.setattr(processor, "_queue", ShutdownDuringAppend(processor._queue))
    processor.on_end(second)
    stats = exporter.stats
    assert stats.exported + stats.dropped_export_failed == 2, stats
    assert not processor._queue
