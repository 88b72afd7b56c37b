"""One module per backend: where its spans go and how to link to a trace in it.

Each module offers `transport(settings)` and `trace_link(settings, trace_id)`.
"""

from __future__ import annotations

from types import ModuleType

from o11ykit.backends import console, honeycomb, jaeger, local, none, otlp
from o11ykit.config import Settings

BY_NAME: dict[str, ModuleType] = {
    "otlp": otlp,
    "jaeger": jaeger,
    "honeycomb": honeycomb,
    "console": console,
    "local": local,
    "none": none,
}


def choose(settings: Settings) -> str:
    """The backend to use: the configured one, else otlp when an endpoint is set, else local."""
    if settings.backend:
        return settings.backend
    return "otlp" if settings.endpoint else "local"
