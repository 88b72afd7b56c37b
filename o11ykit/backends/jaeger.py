"""Jaeger v2 receives OTLP itself: 4318 for HTTP, 4317 for gRPC; its UI listens on 16686."""

from __future__ import annotations

from o11ykit.backends import otlp
from o11ykit.config import Settings
from o11ykit.transport import OtlpTransport

DEFAULT_UI = "http://localhost:16686"


def transport(settings: Settings) -> OtlpTransport:
    return otlp.transport(settings)


def ui_url(settings: Settings) -> str:
    return settings.query_url or DEFAULT_UI


def trace_link(settings: Settings, trace_id: str) -> str | None:
    return f"{ui_url(settings)}/trace/{trace_id}"
