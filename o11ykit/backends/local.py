"""The embedded local store: OTLP/HTTP in on 4318; Jaeger API v3 and its trace pages on 16686."""

from __future__ import annotations

from o11ykit.backends import otlp
from o11ykit.config import Settings
from o11ykit.transport import OtlpTransport

DEFAULT_OTLP_HTTP = "http://127.0.0.1:4318"
DEFAULT_QUERY = "http://127.0.0.1:16686"


def transport(settings: Settings) -> OtlpTransport:
    endpoint = settings.endpoint or DEFAULT_OTLP_HTTP
    return otlp.build(endpoint, settings.replace(protocol="http/protobuf"), dict(settings.headers))


def query_url(settings: Settings) -> str:
    return settings.query_url or DEFAULT_QUERY


def trace_link(settings: Settings, trace_id: str) -> str | None:
    return f"{query_url(settings)}/trace/{trace_id}"
