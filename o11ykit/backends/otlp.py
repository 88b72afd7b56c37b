"""Any OTLP endpoint, over HTTP/protobuf or gRPC, as the OTEL_EXPORTER_OTLP_* variables say."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from o11ykit.config import Settings
from o11ykit.tls import tls_files
from o11ykit.transport import GrpcTransport, HttpTransport, OtlpTransport

DEFAULT_HTTP = "http://localhost:4318"
DEFAULT_GRPC = "http://localhost:4317"


def traces_url(endpoint: str) -> str:
    """A base URL gets the traces path; a URL with a path is used as it is."""
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        return urlunsplit((parts.scheme, parts.netloc, "/v1/traces", parts.query, ""))
    return endpoint


def build(endpoint: str | None, settings: Settings, headers: dict[str, str]) -> OtlpTransport:
    grpc = settings.protocol == "grpc"
    url = endpoint or (DEFAULT_GRPC if grpc else DEFAULT_HTTP)
    # The TLS files are for https alone: read (and refused) only where they would be used.
    tls = tls_files(settings) if urlsplit(url).scheme == "https" else None
    if grpc:
        return GrpcTransport(url, headers, settings.compression, tls)
    return HttpTransport(traces_url(url), headers, settings.compression, tls)


def transport(settings: Settings) -> OtlpTransport:
    return build(settings.endpoint, settings, dict(settings.headers))


def trace_link(settings: Settings, trace_id: str) -> str | None:
    return f"{settings.query_url}/trace/{trace_id}" if settings.query_url else None
