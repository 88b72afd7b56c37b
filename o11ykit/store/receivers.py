"""The OTLP receivers: HTTP (protobuf or JSON, gzip) and gRPC, both into the writer."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from o11ykit.store.http_base import Handler, rpc_status_protobuf
from o11ykit.store.ingest import (
    JSON_TYPES,
    PROTOBUF_TYPES,
    IngestError,
    batch_from_request,
    decode_request,
    media_type,
    parse_protobuf,
)
from o11ykit.store.writer import StoreBusy, Writer

TRACES_PATH = "/v1/traces"
# The OTLP trace service, as its .proto names it (the gRPC path is /<service>/Export).
_TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


@dataclass
class Intake:
    """Where both receivers hand what they decoded: the writer, with the keys to index.

    The receivers listen before the store opens (a port in use then fails before the data
    directory is touched), so the writer and the store's keys are filled in afterwards.
    """

    writer: Writer | None = None
    indexed_keys: frozenset[str] = frozenset()

    def submit(self, request: ExportTraceServiceRequest, payload: Callable[[], bytes]) -> None:
        """Validate and queue the request; IngestError or StoreBusy say why not."""
        if self.writer is None:  # a store that failed to open, stopping its gRPC server
            raise StoreBusy("the store is not running")
        batch = batch_from_request(request, indexed_keys=self.indexed_keys)
        self.writer.submit(batch, payload)


class OtlpHttpHandler(Handler):
    intake: Intake
    max_body_bytes: int

    def do_POST(self) -> None:
        if urlsplit(self.path).path != TRACES_PATH:
            self.discard_body()
            self.send_error_status(404, f"no such path {self.path!r}: OTLP traces go to /v1/traces")
            return
        try:
            body = self._read_body()
            request, protobuf = decode_request(
                body,
                self.headers.get("Content-Type"),
                self.headers.get("Content-Encoding"),
                max_bytes=self.max_body_bytes,
            )
            self.intake.submit(request, protobuf)
        except IngestError as exc:
            self.send_error_status(exc.status, exc.message)
            return
        except StoreBusy as exc:
            self.send_error_status(503, str(exc) or "the store is busy", {"Retry-After": "1"})
            return
        except Exception as exc:  # a bug must cost this request, not the connection or store
            self.log_error("could not store a batch: %s: %s", type(exc).__name__, exc)
            self.send_error_status(500, f"the store could not write this batch: {exc}")
            return
        if media_type(self.headers.get("Content-Type")) in JSON_TYPES:
            self.send_body(200, b"{}", "application/json")
        else:
            response = ExportTraceServiceResponse().SerializeToString()
            self.send_body(200, response, "application/x-protobuf")

    def send_error_status(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        # OTLP/HTTP: an error body is a google.rpc.Status in the request's own encoding.
        if media_type(self.headers.get("Content-Type")) in PROTOBUF_TYPES:
            body = rpc_status_protobuf(status, message)
            self.send_body(status, body, "application/x-protobuf", headers)
        else:
            super().send_error_status(status, message, headers)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise IngestError(411, "Content-Length is required")
        if len(set(self.headers.get_all("Content-Length", []))) > 1:
            # Which one frames the body is anyone's guess (RFC 9112, 6.3): neither is used.
            self.close_connection = True
            raise IngestError(400, "conflicting Content-Length headers")
        try:
            size = int(length)
        except ValueError:
            size = -1
        if size < 0:
            self.close_connection = True
            raise IngestError(400, f"invalid Content-Length {length!r}")
        if size > self.max_body_bytes:
            # Answered without reading it; the connection cannot be reused past an unread body.
            self.close_connection = True
            raise IngestError(413, f"body of {size} bytes is over the {self.max_body_bytes} limit")
        try:
            body = self.rfile.read(size)
        except OSError as exc:  # the socket timed out or broke mid-body: nothing to answer on
            self.close_connection = True
            raise IngestError(408, f"the body did not arrive: {exc}") from None
        if len(body) < size:
            # The client stopped sending: a protobuf prefix parses, and storing it would
            # keep part of a request the client never saw acknowledged (and will retry).
            self.close_connection = True
            raise IngestError(400, f"body cut short: {len(body)} of {size} bytes")
        return body

    def _not_allowed(self) -> None:
        self.discard_body()
        if urlsplit(self.path).path == TRACES_PATH:
            self.send_error_status(405, "OTLP traces are sent with POST", {"Allow": "POST"})
        else:
            # Most likely a query meant for the query port: say where it listens.
            self.send_error_status(
                404,
                f"no such path {urlsplit(self.path).path!r}: this is the store's OTLP receiver"
                f" (POST {TRACES_PATH}); the query API, /api/v3/ and /api/o11ykit/, is on the"
                " query port (16686 by default)",
            )

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = _not_allowed


def grpc_server(host: str, port: int, intake: Intake, max_bytes: int) -> tuple[Any, int] | None:
    """The OTLP/gRPC server, bound and not yet started, and its port; None without grpcio."""
    try:
        import grpc
    except ImportError:
        return None

    # The request arrives as bytes and is parsed here, not by a generated deserializer: a
    # body that is not protobuf is then INVALID_ARGUMENT with the parser's message (a
    # deserializer's failure is INTERNAL, "Exception deserializing request!"), and the
    # ingest log keeps the bytes as received instead of serializing the request again.
    def export(body: bytes, context: Any) -> ExportTraceServiceResponse:
        try:
            intake.submit(parse_protobuf(body), lambda: body)
        except IngestError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
        except StoreBusy as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc) or "the store is busy")
        return ExportTraceServiceResponse()

    from concurrent import futures

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="o11ykit-store-grpc"),
        options=[
            ("grpc.max_receive_message_length", max_bytes),
            # Never share a port with another process that happens to bind the same one.
            ("grpc.so_reuseport", 0),
        ],
    )
    export_handler = grpc.unary_unary_rpc_method_handler(
        export, response_serializer=ExportTraceServiceResponse.SerializeToString
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(_TRACE_SERVICE, {"Export": export_handler}),)
    )
    try:
        bound = server.add_insecure_port(f"{_grpc_host(host)}:{port}")
    except RuntimeError:  # grpcio raises where older versions returned 0
        bound = 0
    if bound == 0:
        # gRPC does not say why; a port in use is by far the likeliest.
        raise OSError(
            errno.EADDRINUSE, f"cannot listen on {host}:{port} (OTLP/gRPC): the port is taken"
        )
    return server, bound


def _grpc_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
