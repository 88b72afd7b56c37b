"""A real OTLP trace receiver, run as its own process, for tests that must see bytes on a socket.

Run it from the repository root::

    python -m tests.support.otlp_receiver --record rec.jsonl --ready-file ready.json [--mode ok]

It listens for OTLP/HTTP (``POST /v1/traces``) and OTLP/gRPC (``TraceService/Export``) on
127.0.0.1, each on a port the OS picks, writes ``{"pid", "http_port", "grpc_port"}`` to the ready
file once both listen, and appends one JSON line per export request to the record file. With
``--tls-cert`` and ``--tls-key`` both ports serve TLS; ``--tls-client-ca`` also asks clients for a
certificate issued by that CA (mutual TLS).

Tests normally use :class:`OtlpReceiver`, which starts the process, waits for it and always stops
it again.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from o11ykit.store.process import watch_parent, write_ready_file

ExportRequest = trace_service_pb2.ExportTraceServiceRequest
ExportResponse = trace_service_pb2.ExportTraceServiceResponse

MODES = ("ok", "error500", "error429", "slow", "discard")
TRACES_PATH = "/v1/traces"
GRPC_PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Real exporters send batches of a few MiB at most; this only stops a runaway client.
MAX_BODY_BYTES = 64 * 1024 * 1024


# --------------------------------------------------------------------------------------------
# Decoding: protobuf messages into plain, JSON-friendly dicts
# --------------------------------------------------------------------------------------------


def any_value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        # JSON has no bytes; hex keeps them comparable in assertions.
        return value.bytes_value.hex()
    return getattr(value, kind)


def attributes(pairs: Iterable[common_pb2.KeyValue]) -> dict[str, Any]:
    return {pair.key: any_value(pair.value) for pair in pairs}


def _enum_name(enum: Any, number: int, prefix: str) -> str:
    try:
        return enum.Name(number).removeprefix(prefix)
    except ValueError:  # a value newer than our proto package: keep the number visible
        return str(number)


def span_dict(span: trace_pb2.Span, resource: dict[str, Any], scope: str) -> dict[str, Any]:
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "name": span.name,
        "kind": _enum_name(trace_pb2.Span.SpanKind, span.kind, "SPAN_KIND_"),
        "start_time_unix_nano": int(span.start_time_unix_nano),
        "end_time_unix_nano": int(span.end_time_unix_nano),
        "attributes": attributes(span.attributes),
        "status_code": _enum_name(trace_pb2.Status.StatusCode, span.status.code, "STATUS_CODE_"),
        "status_message": span.status.message,
        "events": [
            {"name": event.name, "attributes": attributes(event.attributes)}
            for event in span.events
        ],
        "resource": resource,
        "scope": scope,
    }


def flatten_spans(request: ExportRequest) -> list[dict[str, Any]]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            spans.extend(span_dict(span, resource, scope) for span in scope_spans.spans)
    return spans


def count_spans(request: ExportRequest) -> int:
    return sum(
        len(scope_spans.spans)
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
    )


def _hex_ids_to_base64(node: Any) -> None:
    """OTLP/JSON writes ids as hex, but protobuf's JSON mapping expects base64 for bytes."""
    if isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
            with contextlib.suppress(ValueError):
                node[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
        else:
            _hex_ids_to_base64(value)


def parse_json_request(body: bytes) -> ExportRequest:
    document = json.loads(body)
    _hex_ids_to_base64(document)
    return json_format.ParseDict(document, ExportRequest(), ignore_unknown_fields=True)


# --------------------------------------------------------------------------------------------
# Recording and the behaviour shared by both transports
# --------------------------------------------------------------------------------------------


class Recorder:
    """Appends one JSON line per request; the lock keeps lines from interleaving."""

    def __init__(self, path: Path) -> None:
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), default=str) + "\n"
        with self._lock:
            self._file.write(line)
            # Readers poll the file from another process while we run.
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


class Sink:
    """What happens to a decoded export request, whichever transport brought it."""

    def __init__(self, recorder: Recorder, mode: str, slow_seconds: float) -> None:
        self.recorder = recorder
        self.mode = mode
        self.slow_seconds = slow_seconds
        # Set on shutdown so a request sleeping in "slow" mode does not delay the exit.
        self.stopping = threading.Event()

    @property
    def rejects(self) -> bool:
        return self.mode in ("error500", "error429")

    def accept(self, request: ExportRequest, meta: dict[str, Any]) -> bool:
        """Records the request; returns False when the mode says to answer with an error."""
        if self.mode == "discard":
            self.recorder.write(
                {"transport": meta["transport"], "span_count": count_spans(request)}
            )
            return True
        # Recorded on arrival, before any slow sleep: the data did reach the receiver even if
        # the client gives up waiting for the answer.
        self.recorder.write({**meta, "rejected": self.rejects, "spans": flatten_spans(request)})
        if self.mode == "slow":
            self.stopping.wait(self.slow_seconds)
        return not self.rejects


# --------------------------------------------------------------------------------------------
# OTLP/HTTP
# --------------------------------------------------------------------------------------------


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _decompress(body: bytes, encoding: str) -> bytes:
    try:
        if encoding in ("", "identity"):
            return body
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, EOFError, zlib.error) as error:
        raise BadRequest(400, f"cannot decompress {encoding} body: {error}") from error
    raise BadRequest(415, f"unsupported Content-Encoding {encoding!r}")


def decode_http_body(body: bytes, content_type: str, encoding: str) -> ExportRequest:
    raw = _decompress(body, encoding)
    try:
        if content_type == "application/json":
            return parse_json_request(raw)
        if content_type in ("application/x-protobuf", "application/protobuf", ""):
            request = ExportRequest()
            request.ParseFromString(raw)
            return request
    except (DecodeError, json_format.ParseError, ValueError) as error:
        raise BadRequest(
            400, f"cannot decode {content_type or 'protobuf'} body: {error}"
        ) from error
    raise BadRequest(415, f"unsupported Content-Type {content_type!r}")


class OtlpHttpHandler(BaseHTTPRequestHandler):
    # Keep-alive like a real collector: exporters reuse their connection between exports.
    protocol_version = "HTTP/1.1"
    server_version = "otlp-test-receiver"
    sink: Sink  # set on a subclass by make_http_server

    def do_POST(self) -> None:
        try:
            body = self._read_body()
        except BadRequest as error:
            self.close_connection = True
            self._reply(error.status, str(error).encode(), "text/plain")
            return
        if self.path.split("?", 1)[0] != TRACES_PATH:
            self._reply(404, b"only /v1/traces is served", "text/plain")
            return
        self._export(body)

    def _export(self, body: bytes) -> None:
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        try:
            request = decode_http_body(body, content_type, encoding)
        except BadRequest as error:
            self._reply(error.status, str(error).encode(), "text/plain")
            return
        meta = {
            "transport": "http",
            "path": self.path,
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "content_type": content_type or None,
            "content_encoding": encoding or None,
        }
        if self.sink.accept(request, meta):
            self._reply_success(content_type)
        elif self.sink.mode == "error429":
            self._reply(429, b"", "application/x-protobuf", {"Retry-After": "1"})
        else:
            self._reply(500, b"", "application/x-protobuf")

    def _reply_success(self, content_type: str) -> None:
        # OTLP answers in the request's own encoding.
        if content_type == "application/json":
            self._reply(200, b"{}", "application/json")
        else:
            self._reply(200, ExportResponse().SerializeToString(), "application/x-protobuf")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise BadRequest(413, f"body of {length} bytes is too large")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                raise BadRequest(413, "chunked body is too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(chunks)

    def _reply(
        self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # One line per request on stderr would drown the useful errors a test shows on failure.
        pass


class OtlpHttpServer(ThreadingHTTPServer):
    # The default backlog of 5 refuses connections when a benchmark opens many at once.
    request_queue_size = 128


@dataclass(frozen=True)
class TlsServerFiles:
    """PEM files for serving TLS on both ports; with `client_ca`, a client must present a
    certificate issued by it (mutual TLS)."""

    cert: Path
    key: Path
    client_ca: Path | None = None


def make_http_server(sink: Sink, tls: TlsServerFiles | None = None) -> ThreadingHTTPServer:
    handler = type("BoundOtlpHttpHandler", (OtlpHttpHandler,), {"sink": sink})
    server = OtlpHttpServer(("127.0.0.1", 0), handler)
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls.cert, tls.key)
        if tls.client_ca is not None:
            context.load_verify_locations(tls.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        # A handshake that fails (a client that does not trust us, or has no certificate)
        # fails accept(), which socketserver treats as a connection that never came.
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


# --------------------------------------------------------------------------------------------
# OTLP/gRPC
# --------------------------------------------------------------------------------------------


def _metadata_value(value: str | bytes) -> str:
    # "-bin" metadata arrives as bytes, which JSON cannot hold.
    return value.hex() if isinstance(value, bytes) else value


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    # The CamelCase name is fixed by the generated servicer.
    def Export(self, request: ExportRequest, context: grpc.ServicerContext) -> ExportResponse:
        headers = {
            key.lower(): _metadata_value(value) for key, value in context.invocation_metadata()
        }
        meta = {
            "transport": "grpc",
            "path": GRPC_PATH,
            "headers": headers,
            "content_type": "application/grpc",
            # grpcio decompresses before the servicer runs and hides grpc-encoding from it.
            "content_encoding": headers.get("grpc-encoding"),
        }
        if self.sink.accept(request, meta):
            return ExportResponse()
        if self.sink.mode == "error429":
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "receiver mode error429")
        context.abort(grpc.StatusCode.UNAVAILABLE, "receiver mode error500")
        raise AssertionError("unreachable: context.abort raises")


def make_grpc_server(sink: Sink, tls: TlsServerFiles | None = None) -> tuple[grpc.Server, int]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="otlp-grpc"),
        options=[
            ("grpc.max_receive_message_length", MAX_BODY_BYTES),
            # Never share a port with another process that happens to bind the same one.
            ("grpc.so_reuseport", 0),
        ],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(sink), server)
    if tls is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        credentials = grpc.ssl_server_credentials(
            [(tls.key.read_bytes(), tls.cert.read_bytes())],
            root_certificates=tls.client_ca.read_bytes() if tls.client_ca else None,
            require_client_auth=tls.client_ca is not None,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
    if port == 0:
        raise RuntimeError("gRPC server could not bind 127.0.0.1")
    server.start()
    return server, port


# --------------------------------------------------------------------------------------------
# The process
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A real OTLP trace receiver for tests.")
    parser.add_argument("--record", type=Path, required=True, help="JSON-lines file to append to")
    parser.add_argument("--ready-file", type=Path, required=True, help="written once listening")
    parser.add_argument("--mode", choices=MODES, default="ok")
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    parser.add_argument("--tls-cert", type=Path, help="serve TLS on both ports with this PEM")
    parser.add_argument("--tls-key", type=Path, help="the private key of --tls-cert")
    parser.add_argument("--tls-client-ca", type=Path, help="require client certificates from it")
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="exit when the parent process dies (so a crashed test run leaves nothing behind)",
    )
    return parser.parse_args(argv)


def serve(args: argparse.Namespace, stop: threading.Event) -> None:
    recorder = Recorder(args.record)
    sink = Sink(recorder, args.mode, args.slow_seconds)
    tls = TlsServerFiles(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    http_server = make_http_server(sink, tls)
    http_thread = threading.Thread(target=http_server.serve_forever, name="otlp-http", daemon=True)
    http_thread.start()
    grpc_server, grpc_port = make_grpc_server(sink, tls)
    try:
        ready = {"pid": os.getpid(), "http_port": http_server.server_port, "grpc_port": grpc_port}
        write_ready_file(args.ready_file, ready)
        stop.wait()
    finally:
        sink.stopping.set()
        grpc_done = grpc_server.stop(grace=0.5)
        http_server.shutdown()
        http_server.server_close()
        grpc_done.wait(timeout=2.0)
        recorder.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.exit_with_parent:
        threading.Thread(target=watch_parent, args=(stop,), daemon=True).start()
    serve(args, stop)
    return 0


# --------------------------------------------------------------------------------------------
# The test helper
# --------------------------------------------------------------------------------------------


class OtlpReceiver:
    """Runs the receiver as a child process for the length of a ``with`` block.

    ``directory`` (e.g. pytest's ``tmp_path``) gets a fresh sub-directory holding the record
    file, the ready file and the child's stderr, so several receivers can share it.
    """

    def __init__(
        self,
        directory: Path | str,
        mode: str = "ok",
        *,
        slow_seconds: float = 5.0,
        startup_timeout: float = 15.0,
        tls: TlsServerFiles | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self.tls = tls
        self.slow_seconds = slow_seconds
        self.startup_timeout = startup_timeout
        self.directory = Path(tempfile.mkdtemp(prefix="otlp-receiver-", dir=directory))
        self.record_file = self.directory / "requests.jsonl"
        self.ready_file = self.directory / "ready.json"
        self.stderr_file = self.directory / "stderr.log"
        self.http_port = 0
        self.grpc_port = 0
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> OtlpReceiver:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("this OtlpReceiver was already started")
        command = [
            sys.executable, "-m", "tests.support.otlp_receiver",
            "--record", str(self.record_file),
            "--ready-file", str(self.ready_file),
            "--mode", self.mode,
            "--slow-seconds", str(self.slow_seconds),
            "--exit-with-parent",
        ]  # fmt: skip
        if self.tls is not None:
            command += ["--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)]
            if self.tls.client_ca is not None:
                command += ["--tls-client-ca", str(self.tls.client_ca)]
        with self.stderr_file.open("wb") as stderr:
            # The child keeps its own copy of the descriptor; a file (not a pipe) can never fill
            # up and block it.
            self._process = subprocess.Popen(
                command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # Imported here: the receiver also runs as a plain script, where `tests` is not importable.
        from tests.support.processes import stop_process

        if self._process is not None:
            stop_process(self._process)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not self.ready_file.exists():
            if self.returncode is not None:
                raise RuntimeError(
                    f"OTLP receiver exited with {self.returncode} before it was ready:\n"
                    f"{self.stderr()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"OTLP receiver not ready after {self.startup_timeout} s:\n{self.stderr()}"
                )
            time.sleep(0.02)
        ready = json.loads(self.ready_file.read_text(encoding="utf-8"))
        self.http_port = int(ready["http_port"])
        self.grpc_port = int(ready["grpc_port"])

    # -- where to send ------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        """None while the receiver runs (or before it started)."""
        return self._process.poll() if self._process else None

    @property
    def scheme(self) -> str:
        return "http" if self.tls is None else "https"

    @property
    def http_endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.http_port}"

    @property
    def http_traces_url(self) -> str:
        """What an OTLP/HTTP trace exporter's explicit ``endpoint`` argument wants."""
        return f"{self.http_endpoint}{TRACES_PATH}"

    @property
    def grpc_endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.grpc_port}"

    @property
    def grpc_target(self) -> str:
        """What ``grpc.insecure_channel`` wants: host:port, no scheme."""
        return f"127.0.0.1:{self.grpc_port}"

    # -- what arrived -------------------------------------------------------------------------

    def requests(self) -> list[dict[str, Any]]:
        return list(_read_records(self.record_file))

    def spans(self) -> list[dict[str, Any]]:
        return [
            span
            for request in self.requests()
            if not request.get("rejected")
            for span in request.get("spans", ())
        ]

    def stderr(self) -> str:
        try:
            return self.stderr_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_spans(
        self,
        predicate: Callable[[list[dict[str, Any]]], Any] = bool,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """Polls until ``predicate(spans)`` is true and returns those spans."""
        return self._wait(self.spans, predicate, timeout, "spans")

    def wait_for_requests(
        self,
        predicate: Callable[[list[dict[str, Any]]], Any] = bool,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """Like :meth:`wait_for_spans`, over raw requests (rejected ones included)."""
        return self._wait(self.requests, predicate, timeout, "requests")

    def _wait(
        self,
        fetch: Callable[[], list[dict[str, Any]]],
        predicate: Callable[[list[dict[str, Any]]], Any],
        timeout: float,
        what: str,
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            items = fetch()
            if predicate(items):
                return items
            if time.monotonic() >= deadline or self.returncode is not None:
                raise AssertionError(self.summary(f"{what} never matched within {timeout} s"))
            time.sleep(0.05)

    def summary(self, headline: str = "OTLP receiver") -> str:
        """A readable account of what arrived, for assertion messages."""
        requests = self.requests()
        lines = [
            headline,
            f"  mode={self.mode} pid={self.pid} returncode={self.returncode}"
            f" http={self.http_endpoint} grpc={self.grpc_endpoint}",
            f"  {len(requests)} request(s):",
        ]
        lines.extend(f"    {_describe_request(request)}" for request in requests[:20])
        if len(requests) > 20:
            lines.append(f"    ... and {len(requests) - 20} more")
        stderr = self.stderr().strip()
        if stderr:
            lines.append("  receiver stderr (last 2000 characters):")
            lines.append(stderr[-2000:])
        return "\n".join(lines)


def _read_records(path: Path) -> Iterator[dict[str, Any]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    # The last piece has no newline yet if the receiver is mid-write: skip it until it does.
    for line in data.split(b"\n")[:-1]:
        if line.strip():
            yield json.loads(line)


def _describe_request(request: dict[str, Any]) -> str:
    if "spans" not in request:
        return f"{request.get('transport')}: {request.get('span_count')} span(s) (discarded)"
    names = ", ".join(
        f"{span['name']}[{span['kind']}, {span['status_code']}]" for span in request["spans"]
    )
    flags = " REJECTED" if request.get("rejected") else ""
    # Unknown for gRPC (grpcio hides it), so only shown when the request said.
    encoding = f" ({request['content_encoding']})" if request.get("content_encoding") else ""
    return f"{request['transport']}{encoding}{flags}: {names or 'no spans'}"


if __name__ == "__main__":
    sys.exit(main())
