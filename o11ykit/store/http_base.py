"""What the store's HTTP servers share: the handler base, errors as google.rpc.Status."""

from __future__ import annotations

import contextlib
import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Idle keep-alive connections are dropped after this; exporters reconnect.
SOCKET_TIMEOUT = 30.0
# google.rpc.Code numbers for the HTTP statuses the servers answer with.
_RPC_CODES = {400: 3, 404: 5, 405: 12, 408: 4, 411: 3, 413: 8, 415: 3, 500: 13, 501: 12, 503: 14}


def rpc_status_protobuf(status: int, message: str) -> bytes:
    """google.rpc.Status as protobuf bytes: what OTLP/HTTP answers a protobuf request with.

    Written by hand (field 1 `code`, field 2 `message`), so the store does not need the
    googleapis-common-protos package for two fields.
    """
    code = _RPC_CODES.get(status, 2)
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def rpc_status(status: int, message: str) -> dict[str, Any]:
    """google.rpc.Status as the OpenAPI document defines it, plus Jaeger's gateway error.

    The OpenAPI document types error bodies as google.rpc.Status; Jaeger's HTTP gateway
    writes GRPCGatewayError ({"error": {...}}). Both are present so a client written
    against either reads the message.
    """
    code = _RPC_CODES.get(status, 2)
    phrase = HTTPStatus(status).phrase
    detail = {"grpcCode": code, "httpCode": status, "message": message, "httpStatus": phrase}
    return {"code": code, "message": message, "error": detail}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: exporters reuse their connection
    # Headers and body go out in separate writes; with Nagle on, every small answer would
    # wait for the client's delayed ACK (about 40 ms) before its body left.
    disable_nagle_algorithm = True
    timeout = SOCKET_TIMEOUT
    server_version = "o11ykit-store"

    def send_body(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(document, separators=(",", ":")).encode()
        self.send_body(status, body, "application/json", headers)

    def send_error_status(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_json(status, rpc_status(status, message), headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (a method no handler has, a malformed request
        line, headers too long) as google.rpc.Status JSON, like every other answer, not its
        HTML page. The connection closes after it, as the standard library's does."""
        self.close_connection = True
        self.send_json(code, rpc_status(code, message or HTTPStatus(code).phrase))

    def discard_body(self, limit: int = 1024 * 1024) -> None:
        """Read a body nobody wants, or give up the connection rather than read a big one."""
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
            return
        try:
            size = int(length)
        except ValueError:
            self.close_connection = True
            return
        if 0 <= size <= limit:
            self.rfile.read(size)
        else:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        # A line per request on stderr would bury the lines that matter.
        pass


class Server(ThreadingHTTPServer):
    # Exporters in many processes connect at once; the default backlog of 5 refuses some.
    request_queue_size = 128
    daemon_threads = True
    # Idle keep-alive connections must not hold up stop() for SOCKET_TIMEOUT.
    block_on_close = False
    # A thread a connection: clients that connect and then trickle (or never send) must not
    # make threads without end. Past this many open connections a new one is answered 503.
    max_connections = 256

    def server_activate(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: nothing else will give the slot back
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
    b"Connection: close\r\n\r\n"
)


def http_server(
    host: str, port: int, handler: type[Handler], role: str, **attributes: Any
) -> Server:
    """A server of its own subclass of `handler`, with `attributes` set on it; `role` names
    the port in messages (OTLP/HTTP, query)."""
    bound = type(handler.__name__, (handler,), attributes)
    try:
        return Server((host, port), bound)
    except OSError as exc:
        # The bare errno text does not say which of the three ports is taken.
        raise OSError(
            exc.errno, f"cannot listen on {host}:{port} ({role}): {exc.strerror}"
        ) from None
