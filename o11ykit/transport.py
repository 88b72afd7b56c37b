"""Sending one encoded OTLP request, once, within a deadline, with a plain-words diagnosis.

o11ykit sends the bytes itself rather than through the SDK's OTLP exporters: those retry
for up to their whole timeout and log a line per failed batch, which is exactly what a
service with a dead backend must not pay for. A failed batch is counted, not retried.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit

from opentelemetry.sdk.trace import ReadableSpan

from o11ykit._version import __version__
from o11ykit.otlp_encoding import encode_request
from o11ykit.resource import process_identity

_GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_USER_AGENT = f"o11ykit/{__version__}"


class ExportFailure(Exception):
    """Why a batch did not arrive, in words a learner can act on."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class Transport(Protocol):
    target: str

    def send(self, spans: Sequence[ReadableSpan], timeout: float) -> None: ...

    def close(self) -> None: ...


def encode(spans: Sequence[ReadableSpan]) -> bytes:
    """OTLP protobuf bytes, with this process's pid and instance id in the resource."""
    return encode_request(spans, process_identity())


class OtlpTransport:
    target: str

    def send(self, spans: Sequence[ReadableSpan], timeout: float) -> None:
        self.post(encode(spans), timeout)

    def post(self, body: bytes, timeout: float) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _diagnose_http_status(status: int, target: str, body: bytes) -> ExportFailure:
    snippet = body[:200].decode("utf-8", "replace").strip()
    if status in (401, 403):
        return ExportFailure(
            "bad key", f"{target} answered {status}: check the API key ({snippet})"
        )
    if status == 429:
        return ExportFailure("throttled", f"{target} answered 429 Too Many Requests")
    if status == 404:
        return ExportFailure("wrong path", f"{target} answered 404: is the path /v1/traces?")
    if status == 415:
        return ExportFailure("wrong protocol", f"{target} answered 415: it wants another encoding")
    return ExportFailure("server error", f"{target} answered HTTP {status} ({snippet})")


def _diagnose_os_error(exc: BaseException, target: str, grpc_hint: bool) -> ExportFailure:
    if isinstance(exc, ConnectionRefusedError):
        return ExportFailure("connection refused", f"nothing listens at {target}")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return ExportFailure("timed out", f"{target} did not answer in time")
    if isinstance(exc, ssl.SSLError):
        return ExportFailure("TLS", f"TLS handshake with {target} failed: {exc}")
    if isinstance(exc, socket.gaierror):
        return ExportFailure("unknown host", f"cannot resolve the host of {target}")
    if isinstance(exc, (http.client.BadStatusLine, http.client.RemoteDisconnected)) or (
        isinstance(exc, ConnectionResetError) and grpc_hint
    ):
        return ExportFailure(
            "wrong protocol",
            f"{target} did not answer HTTP; is this a gRPC port (4317)? "
            "Use protocol=grpc or the HTTP port (4318)",
        )
    return ExportFailure("network error", f"{target}: {type(exc).__name__}: {exc}")


class HttpTransport(OtlpTransport):
    """OTLP/HTTP protobuf over one kept-alive connection."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.target = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/v1/traces") + (f"?{parts.query}" if parts.query else "")
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": _USER_AGENT,
            **headers,
        }
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._https:
                self._connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout, context=ssl.create_default_context()
                )
            else:
                self._connection = http.client.HTTPConnection(
                    self._host, self._port, timeout=timeout
                )
        self._connection.timeout = timeout
        if self._connection.sock is not None:
            self._connection.sock.settimeout(timeout)
        return self._connection

    def post(self, body: bytes, timeout: float) -> None:
        connection = self._connect(timeout)
        try:
            connection.request("POST", self._path, body=body, headers=self._headers)
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise _diagnose_os_error(exc, self.target, grpc_hint=True) from None
        if response.status >= 300:
            if response.will_close:
                self.close()
            raise _diagnose_http_status(response.status, self.target, answer)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class GrpcTransport(OtlpTransport):
    """OTLP/gRPC with the request already encoded; the channel opens on first use."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.target = f"{parts.hostname}:{parts.port or 4317}"
        self._secure = parts.scheme == "https"
        self._metadata = tuple((k.lower(), v) for k, v in headers.items())
        self._channel = None
        self._call = None

    def _export_call(self):
        if self._call is None:
            import grpc  # imported on first export: keeps `import o11ykit` lean

            self._channel = (
                grpc.secure_channel(self.target, grpc.ssl_channel_credentials())
                if self._secure
                else grpc.insecure_channel(self.target)
            )
            self._call = self._channel.unary_unary(_GRPC_METHOD)
        return self._call

    def post(self, body: bytes, timeout: float) -> None:
        import grpc

        try:
            self._export_call()(body, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _diagnose_grpc(exc, self.target) from None

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = self._call = None


def _diagnose_grpc(exc, target: str) -> ExportFailure:
    import grpc

    code = exc.code() if hasattr(exc, "code") else None
    details = (exc.details() if hasattr(exc, "details") else "") or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        if "refused" in details.lower():
            return ExportFailure("connection refused", f"nothing listens at {target}")
        if "http" in details.lower() or "protocol" in details.lower() or "frame" in details.lower():
            return ExportFailure(
                "wrong protocol",
                f"{target} did not answer gRPC; is this the HTTP port (4318)? "
                "Use protocol=http/protobuf or the gRPC port (4317)",
            )
        return ExportFailure("unavailable", f"{target}: {details}")
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return ExportFailure("bad key", f"{target} refused the credentials: {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ExportFailure("timed out", f"{target} did not answer in time")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ExportFailure("throttled", f"{target} is throttling: {details}")
    return ExportFailure("server error", f"{target} answered {code}: {details}")
