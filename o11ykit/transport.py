"""Sending one encoded OTLP request, once, within a deadline, with a plain-words diagnosis.

o11ykit sends the bytes itself rather than through the SDK's OTLP exporters: those retry
for up to their whole timeout and log a line per failed batch, which is exactly what a
service with a dead backend must not pay for. A failed batch is counted, not retried.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from opentelemetry.sdk.trace import ReadableSpan

from o11ykit._version import __version__
from o11ykit.otlp_encoding import SpanEncoder
from o11ykit.privacy import Scrubber
from o11ykit.resource import process_identity
from o11ykit.settings_parsers import without_secrets

if TYPE_CHECKING:
    import http.client

    from o11ykit.tls import TlsFiles

# http.client (with email and ssl behind it) is imported on the first export, in the
# export thread: `import o11ykit` and init() stay lean.

_GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_USER_AGENT = f"o11ykit/{__version__}"
# Level 1 of 9: a 512-span batch of o11ykit's spans (143 kB) shrank 4.9 times in 0.8 ms,
# against 5.3 times in 1.9 ms at 6 (Go's default) and 5.4 in 3.2 ms at 9 (Python's gzip
# default); encoding the batch took 9.4 ms (docs/export.md, "Compression").
GZIP_LEVEL = 1


class ExportFailure(Exception):
    """Why a batch did not arrive, in words a learner can act on."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class Transport(Protocol):
    target: str

    def send(self, spans: Sequence[ReadableSpan], timeout: float, scrubber: Scrubber) -> None: ...

    def close(self) -> None: ...


class OtlpTransport:
    target: str
    _encoder: SpanEncoder | None = None
    # Set by close(): a send taken before shutdown that gets here after it must not open a
    # connection (or a channel) that nothing would close.
    _closed = False

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise ExportFailure("cancelled", f"the export to {self.target} was shut down")

    def send(self, spans: Sequence[ReadableSpan], timeout: float, scrubber: Scrubber) -> None:
        """Scrubbed OTLP protobuf, with this process's pid and instance id in the resource."""
        encoder = self._encoder
        if encoder is None or encoder.scrubber is not scrubber:
            encoder = self._encoder = SpanEncoder(scrubber)
        self.post(encoder.encode(spans, process_identity()), timeout)

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


def _diagnose_os_error(exc: BaseException, target: str, fresh_connection: bool) -> ExportFailure:
    if isinstance(exc, ConnectionRefusedError):
        return ExportFailure("connection refused", f"nothing listens at {target}")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return ExportFailure("timed out", f"{target} did not answer in time")
    import http.client
    import ssl

    if isinstance(exc, ssl.SSLError):
        return ExportFailure("TLS", f"TLS handshake with {target} failed: {exc}")
    if isinstance(exc, socket.gaierror):
        return ExportFailure("unknown host", f"cannot resolve the host of {target}")
    # A new connection that is reset or answered with something that is not HTTP is the
    # classic sign of an HTTP request sent to a gRPC (HTTP/2-only) port.
    not_http = isinstance(exc, (http.client.BadStatusLine, http.client.RemoteDisconnected))
    if fresh_connection and (not_http or isinstance(exc, ConnectionResetError)):
        return ExportFailure(
            "wrong protocol",
            f"{target} did not answer HTTP; is this a gRPC port (4317)? "
            "Use protocol=grpc or the HTTP port (4318)",
        )
    return ExportFailure("network error", f"{target}: {type(exc).__name__}: {exc}")


class HttpTransport(OtlpTransport):
    """OTLP/HTTP protobuf over one kept-alive connection."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        compression: str = "none",
        tls: TlsFiles | None = None,
    ) -> None:
        parts = urlsplit(url)
        # The target is for people (failure warnings, stats, doctor): no user or key in it.
        self.target = without_secrets(url)
        self._gzip = compression == "gzip"
        self._https = parts.scheme == "https"
        # Built once from the files; plain http has no use for them (tls.py).
        self._ssl_context = tls.ssl_context() if tls and self._https else None
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/v1/traces") + (f"?{parts.query}" if parts.query else "")
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": _USER_AGENT,
            **({"Content-Encoding": "gzip"} if self._gzip else {}),
            **headers,
        }
        self._connection: http.client.HTTPConnection | None = None
        self._sending: _Cutoff | None = None
        self._owner = os.getpid()

    def _connection_for(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """The kept-alive connection, or a new one; and whether it is being reused."""
        connection = self._connection
        if connection is not None and (self._owner != os.getpid() or _closed_by_peer(connection)):
            # Another process's socket (we were forked) is dropped unclosed: closing it
            # would cut the parent's connection. One the server closed is just stale.
            if self._owner == os.getpid():
                connection.close()
            connection = self._connection = None
        reused = connection is not None
        if connection is None:
            self._refuse_if_closed()
            import http.client
            import ssl

            if self._https:
                context = self._ssl_context or ssl.create_default_context()
                connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout, context=context
                )
            else:
                connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
            self._connection, self._owner = connection, os.getpid()
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        return connection, reused

    def post(self, body: bytes, timeout: float) -> None:
        import http.client

        deadline = time.monotonic() + timeout
        if self._gzip:  # zlib lets go of the GIL while it compresses: the service runs on
            import gzip

            body = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        connection, reused = self._connection_for(timeout)
        try:
            status, answer, will_close = self._exchange(connection, body, deadline)
        except (OSError, http.client.HTTPException) as exc:
            self._drop_connection()
            if not reused or time.monotonic() >= deadline:
                raise _diagnose_os_error(exc, self.target, fresh_connection=not reused) from None
            # A kept-alive connection can die between batches (idle timeouts of collectors
            # and load balancers); the batch was not delivered, so send it once on a new one.
            connection, _ = self._connection_for(max(deadline - time.monotonic(), 0.01))
            try:
                status, answer, will_close = self._exchange(connection, body, deadline)
            except (OSError, http.client.HTTPException) as again:
                self._drop_connection()
                raise _diagnose_os_error(again, self.target, fresh_connection=True) from None
        if will_close:
            self._drop_connection()
        if status >= 300:
            raise _diagnose_http_status(status, self.target, answer)

    def _exchange(
        self, connection: http.client.HTTPConnection, body: bytes, deadline: float
    ) -> tuple:
        """One request and its answer, all of it by `deadline`. The socket's timeout bounds
        each read alone: a peer that trickles a byte at a time (a broken proxy) would hold
        the export thread for ever. So a timer cuts the socket at the deadline, and so does
        close() from another thread (shutdown)."""
        import http.client

        cutoff = self._sending = _Cutoff(deadline)
        try:
            # After publishing the send: close() sets the flag before it looks for one, so
            # either it cancels this send or this send sees it closed, never neither.
            self._refuse_if_closed()
            if connection.sock is None:
                connection.connect()
            cutoff.watch(connection.sock)
            connection.request("POST", self._path, body=body, headers=self._headers)
            response = connection.getresponse()
            return response.status, response.read(), response.will_close
        except (OSError, http.client.HTTPException):
            if cutoff.cancelled:
                raise ExportFailure(
                    "cancelled", f"the export to {self.target} was cut off by shutdown"
                ) from None
            if cutoff.timed_out:
                raise TimeoutError("the whole exchange took longer than the timeout") from None
            raise
        finally:
            self._sending = None
            if cutoff.stop():  # closed from another thread, which left the closing to us
                if self._connection is connection:
                    self._connection = None
                connection.close()

    def close(self) -> None:
        """For good (shutdown): a send still on its way opens no new connection after it."""
        self._closed = True
        self._drop_connection()

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None or self._owner != os.getpid():
            return  # another process's socket (we were forked) is dropped unclosed
        sending = self._sending
        if sending is not None and sending.cancel():
            # Closing here would wait for the export thread's read to end (the response
            # holds its buffer's lock while it reads): a trickling peer held shutdown(1.0)
            # for 48 s. The cut makes that read return at once; its thread closes.
            return
        connection.close()


class _Cutoff:
    """Shuts one exchange's socket down, which makes a read blocked on it return at once:
    at the exchange's deadline (a timer thread), or when another thread closes the transport.
    It keeps the socket it was given: closing the connection drops the connection's own
    reference. Started per exchange; exchanges are per batch, not per span."""

    def __init__(self, deadline: float) -> None:
        self.timed_out = False
        self.cancelled = False
        self._pid = os.getpid()
        self._thread = threading.get_ident()
        self._sock: socket.socket | None = None
        self._over = False
        self._lock = threading.Lock()
        self._deadline = deadline
        self._timer: threading.Timer | None = threading.Timer(
            max(0.0, deadline - time.monotonic()), self._time_out
        )
        self._timer.daemon = True
        try:
            self._timer.start()
        except RuntimeError:
            # The exit flush runs in an atexit handler, where Python 3.12.0-3.12.2 refuse to
            # start a thread ("can't create new thread at interpreter shutdown"; the atexit
            # docs say any 3.12 or later may). The batch still goes: its socket's timeout,
            # the time left, then bounds each read, though not a peer that trickles.
            self._timer = None

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            if self._timer is None and sock is not None:
                sock.settimeout(max(0.001, self._deadline - time.monotonic()))
            if self.timed_out or self.cancelled:
                self._cut()

    def _time_out(self) -> None:
        with self._lock:
            if not self._over:
                self.timed_out = True
                self._cut()

    def cancel(self) -> bool:
        """From another thread of this process: cut the exchange short. True if it was
        still running; its own thread then closes the connection."""
        if self._pid != os.getpid() or self._thread == threading.get_ident():
            return False
        with self._lock:
            if self._over:
                return False
            self.cancelled = True
            self._cut()
            return True

    def stop(self) -> bool:
        """The exchange is over; whether it was cancelled."""
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._over = True
            return self.cancelled

    def _cut(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)


def _closed_by_peer(connection: http.client.HTTPConnection) -> bool:
    """An idle kept-alive socket that is readable has been closed (or spoken to) by the peer."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        if hasattr(select, "poll"):
            # poll, not select: select fails for descriptors past 1023, which a busy server
            # has, and every batch would then open a new connection.
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class GrpcTransport(OtlpTransport):
    """OTLP/gRPC with the request already encoded; the channel opens on first use.

    A channel belongs to the process that opened it: a forked worker opens its own.
    """

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        compression: str = "none",
        tls: TlsFiles | None = None,
    ) -> None:
        parts = urlsplit(url)
        self._secure = parts.scheme == "https"
        self._gzip = compression == "gzip"
        self._tls = tls
        # An https endpoint without a port is a TLS service on 443 (Honeycomb's
        # https://api.honeycomb.io is one); 4317 is the collector's plaintext default.
        host = parts.hostname or "localhost"
        host = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
        self.target = f"{host}:{parts.port or (443 if self._secure else 4317)}"
        self._metadata = tuple((k.lower(), v) for k, v in headers.items())
        self._channel = None
        self._call = None
        self._owner = os.getpid()

    def _export_call(self):
        call = self._call
        if call is None or self._owner != os.getpid():
            self._refuse_if_closed()
            import grpc  # imported on first export: keeps `import o11ykit` lean

            # gRPC compresses each message itself (grpc-encoding: gzip), at its own level.
            compression = grpc.Compression.Gzip if self._gzip else None
            channel = (
                grpc.secure_channel(
                    self.target,
                    self._tls.grpc_credentials() if self._tls else grpc.ssl_channel_credentials(),
                    compression=compression,
                )
                if self._secure
                else grpc.insecure_channel(self.target, compression=compression)
            )
            call = channel.unary_unary(_GRPC_METHOD)
            # A local, not self._call, is returned: close() from another thread may clear it.
            self._channel, self._call, self._owner = channel, call, os.getpid()
            if self._closed:  # close() ran while the channel was made: it did not see it
                self._channel = self._call = None
                channel.close()
                self._refuse_if_closed()
        return call

    def post(self, body: bytes, timeout: float) -> None:
        import grpc

        try:
            self._export_call()(body, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _diagnose_grpc(exc, self.target) from None

    def close(self) -> None:
        # grpc's close() cancels a call in flight (the export thread gets CANCELLED at once)
        # without waiting for it, so unlike HTTP it is safe from any thread.
        self._closed = True
        channel, self._channel, self._call = self._channel, None, None
        if channel is not None and self._owner == os.getpid():
            channel.close()


# What grpc says when the peer speaks HTTP/1.x, e.g. an OTLP/HTTP port.
_NOT_GRPC_MARKERS = ("http1.x", "failed parsing http/2", "http status")


def _diagnose_grpc(exc, target: str) -> ExportFailure:
    import grpc

    code = exc.code() if hasattr(exc, "code") else None
    details = (exc.details() if hasattr(exc, "details") else "") or ""
    lowered = details.lower()
    if code == grpc.StatusCode.UNAVAILABLE:
        if "refused" in lowered:
            return ExportFailure("connection refused", f"nothing listens at {target}")
        if any(marker in lowered for marker in _NOT_GRPC_MARKERS):
            return ExportFailure(
                "wrong protocol",
                f"{target} did not answer gRPC; is this the HTTP port (4318)? "
                "Use protocol=http/protobuf or the gRPC port (4317)",
            )
        if "handshake failed" in lowered:  # an untrusted certificate, as HTTP says it
            return ExportFailure("TLS", f"TLS handshake with {target} failed: {details}")
        return ExportFailure("unavailable", f"{target}: {details}")
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return ExportFailure("bad key", f"{target} refused the credentials: {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ExportFailure("timed out", f"{target} did not answer in time")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ExportFailure("throttled", f"{target} is throttling: {details}")
    if code == grpc.StatusCode.CANCELLED:
        return ExportFailure("cancelled", f"the export to {target} was cut off by shutdown")
    return ExportFailure("server error", f"{target} answered {code}: {details}")
