"""Outbound HTTP through OpenTelemetry's own httpx and requests instrumentations.

They create the CLIENT span and inject headers through the global propagator, which is
o11ykit's: baggage leaves only for trusted hosts (see baggage.py).
"""

from __future__ import annotations

import importlib.util

from opentelemetry.trace import TracerProvider

_INSTRUMENTORS = {
    "httpx": ("opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
    "requests": ("opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
}


def enable(library: str, provider: TracerProvider) -> str:
    module_name, class_name = _INSTRUMENTORS[library]
    if importlib.util.find_spec(module_name) is None:
        return (
            f"skipped: {library} is installed but {module_name} is not"
            f" (pip install 'o11ykit[{library}]')"
        )
    module = importlib.import_module(module_name)
    instrumentor = getattr(module, class_name)()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)
    return "active"
