"""The embedded local store: OTLP in on 4318 (HTTP) and 4317 (gRPC); Jaeger API v3 and its
trace pages on 16686."""

from __future__ import annotations

from o11ykit.backends import otlp
from o11ykit.config import Settings
from o11ykit.transport import OtlpTransport

DEFAULT_OTLP_HTTP = "http://127.0.0.1:4318"
DEFAULT_OTLP_GRPC = "http://127.0.0.1:4317"
DEFAULT_QUERY = "http://127.0.0.1:16686"


def transport(settings: Settings) -> OtlpTransport:
    # The store takes both protocols, each on its own port: `protocol` picks, as for otlp.
    default = DEFAULT_OTLP_GRPC if settings.protocol == "grpc" else DEFAULT_OTLP_HTTP
    return otlp.build(settings.endpoint or default, settings, dict(settings.headers))


def query_url(settings: Settings) -> str:
    return settings.query_url or DEFAULT_QUERY


def trace_link(settings: Settings, trace_id: str) -> str | None:
    return f"{query_url(settings)}/trace/{trace_id}"
