"""Outbound HTTP through OpenTelemetry's own httpx, httpx2 and requests instrumentations.

They create the CLIENT span and inject headers through the global propagator, which is
o11ykit's: baggage leaves only for trusted hosts (see baggage.py).
"""

from __future__ import annotations

import importlib.util

from opentelemetry.trace import TracerProvider

_INSTRUMENTORS = {
    "httpx": ("opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
    # httpx2 (httpx's successor) is instrumented by the same package, from 0.65b0 on.
    "httpx2": ("opentelemetry.instrumentation.httpx", "HTTPX2ClientInstrumentor"),
    "requests": ("opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
}


def enable(library: str, provider: TracerProvider) -> str:
    module_name, class_name = _INSTRUMENTORS[library]
    upgrade = f"pip install -U 'o11ykit[{library}]'"
    if importlib.util.find_spec(module_name) is None:
        return f"skipped: {library} is installed but {module_name} is not ({upgrade})"
    module = importlib.import_module(module_name)
    instrumentor_class = getattr(module, class_name, None)
    if instrumentor_class is None:  # an instrumentation release older than the library
        return f"skipped: the installed {module_name} has no {class_name} ({upgrade})"
    instrumentor = instrumentor_class()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)
    return "active"
