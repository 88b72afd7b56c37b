"""The OTLP receivers: HTTP (protobuf or JSON, gzip) and gRPC, both into the writer."""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from o11ykit.store.batches import batch_from_request
from o11ykit.store.decode import (
    JSON_TYPES,
    PROTOBUF_TYPES,
    IngestError,
    decode_request,
    media_type,
    parse_protobuf,
)
from o11ykit.store.http_base import Handler, rpc_status_protobuf
from o11ykit.store.writer import StoreBusy, Writer

TRACES_PATH = "/v1/traces"
# A body over the limit but under this is read and dropped before the 413 (see _read_body).
DRAIN_BYTES = 64 * 1024 * 1024
# Chunked framing: a chunk-size line (hex size, extensions) and trailer lines are short.
_MAX_CHUNK_LINE = 4096
_MAX_TRAILER_LINES = 32
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS = re.compile(r"[0-9]{1,19}")
# Kinds of exception already logged with their traceback (_report_internal_error).
_REPORTED_ERRORS: set[str] = set()

log = logging.getLogger("o11ykit.store")
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
    query_port: int  # the store's query port, set once it listens

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
            _report_internal_error(exc)
            # The details go to the store's log, not to a client that may be on another host.
            self.send_error_status(
                500, "the store could not write this batch: an internal error (see its log)"
            )
            return
        sent_as = media_type(self.headers.get("Content-Type"))
        if sent_as in JSON_TYPES:
            self.send_body(200, b"{}", "application/json")
        else:
            # OTLP/HTTP: the response has the request's Content-Type.
            response = ExportTraceServiceResponse().SerializeToString()
            self.send_body(200, response, sent_as)

    def send_error_status(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        # OTLP/HTTP: an error body is a google.rpc.Status in the request's own encoding.
        sent_as = media_type(self.headers.get("Content-Type"))
        if sent_as in PROTOBUF_TYPES:
            self.send_body(status, rpc_status_protobuf(status, message), sent_as, headers)
        else:
            super().send_error_status(status, message, headers)

    def handle_expect_100(self) -> bool:
        # A client that asks before sending a body over the limit is told 413 now, rather
        # than "100 Continue" and then 413 with its body unread.
        size = _content_length(self.headers.get("Content-Length"))
        if size is not None and size > self.max_body_bytes:
            self.close_connection = True
            self.send_error_status(413, self._over_limit(size))
            return False
        return super().handle_expect_100()

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") is not None:
            if length is not None:
                # Which of the two frames the body is how requests are smuggled (RFC 9112,
                # 6.3): neither is used.
                self.close_connection = True
                raise IngestError(400, "both Content-Length and Transfer-Encoding")
            return self._read_chunked()
        if length is None:
            self.close_connection = True
            raise IngestError(411, "Content-Length or Transfer-Encoding: chunked is required")
        if len(set(self.headers.get_all("Content-Length", []))) > 1:
            # Which one frames the body is anyone's guess (RFC 9112, 6.3): neither is used.
            self.close_connection = True
            raise IngestError(400, "conflicting Content-Length headers")
        size = _content_length(length)
        if size is None:
            self.close_connection = True
            raise IngestError(400, f"invalid Content-Length {length[:50]!r}")
        if size > self.max_body_bytes:
            # The connection cannot be reused past an unread body. A body not much larger
            # is read and dropped first: closing with it unread makes the kernel reset the
            # connection, and the client would see that rather than this answer.
            self.close_connection = True
            if size <= DRAIN_BYTES:
                self.discard_body(DRAIN_BYTES)
            raise IngestError(413, self._over_limit(size))
        return self._read_exactly(size)

    def _read_exactly(self, size: int) -> bytes:
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

    def _read_chunked(self) -> bytes:
        """A chunked body (RFC 9112, 7.1), as exporters that stream their gzip send it
        (OpenTelemetry JS, and Java with compression): no length known beforehand."""
        codings = ",".join(self.headers.get_all("Transfer-Encoding", [])).lower()
        if [coding.strip() for coding in codings.split(",")] != ["chunked"]:
            self.close_connection = True
            raise IngestError(501, f"Transfer-Encoding {codings[:50]!r}: only chunked is read")
        parts: list[bytes] = []
        total = 0
        while True:
            size = self._chunk_size()
            if size == 0:
                break
            total += size
            if total > self.max_body_bytes:
                self.close_connection = True
                raise IngestError(413, self._over_limit(total, so_far=True))
            parts.append(self._read_exactly(size))
            if self._read_line() != b"":
                self.close_connection = True
                raise IngestError(400, "malformed chunked body: a chunk runs past its size")
        for _ in range(_MAX_TRAILER_LINES):  # trailer fields, read and ignored
            if self._read_line() == b"":
                return b"".join(parts)
        self.close_connection = True
        raise IngestError(400, f"malformed chunked body: over {_MAX_TRAILER_LINES} trailer lines")

    def _chunk_size(self) -> int:
        line = self._read_line()
        size = line.split(b";", 1)[0].strip()  # chunk extensions are ignored
        if not _CHUNK_SIZE.fullmatch(size):
            self.close_connection = True
            raise IngestError(400, f"malformed chunked body: chunk size {line[:50]!r}")
        return int(size, 16)

    def _read_line(self) -> bytes:
        """One line of the chunked framing without its CRLF; 400 or 408 if it never ends."""
        try:
            line = self.rfile.readline(_MAX_CHUNK_LINE + 1)
        except OSError as exc:
            self.close_connection = True
            raise IngestError(408, f"the body did not arrive: {exc}") from None
        if not line.endswith(b"\n"):
            self.close_connection = True
            if len(line) > _MAX_CHUNK_LINE:
                raise IngestError(400, "malformed chunked body: a framing line is too long")
            raise IngestError(400, "body cut short: the chunked body did not end")
        return line.rstrip(b"\r\n")

    def _over_limit(self, size: int, so_far: bool = False) -> str:
        body = f"body of {'over ' if so_far else ''}{size} bytes"
        return f"{body} is over the {self.max_body_bytes} limit"

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
                f" query port, {self.query_port}",
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


def _report_internal_error(exc: Exception) -> None:
    """A bug in the store's ingest, said with its traceback the first time each kind of
    exception occurs, so that a batch failing the same way again and again does not flood
    the log."""
    kind = type(exc).__qualname__
    if kind in _REPORTED_ERRORS:
        log.debug("o11ykit store: could not store a batch", exc_info=exc)
        return
    _REPORTED_ERRORS.add(kind)
    log.error(
        "o11ykit store: could not store a batch (answered 500; later %s errors are not"
        " logged again)",
        kind,
        exc_info=exc,
    )


def _content_length(value: str | None) -> int | None:
    """The header's number, or None: ASCII digits alone (int() would take "+5" and "1_0")."""
    if value is None or not _DIGITS.fullmatch(value.strip()):
        return None
    return int(value.strip())


def _grpc_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
