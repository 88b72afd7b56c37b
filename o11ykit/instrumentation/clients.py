"""Outbound HTTP through OpenTelemetry's own httpx, httpx2 and requests instrumentations.

They create the CLIENT span and inject headers through the global propagator, which is
o11ykit's: baggage leaves only for trusted hosts (see baggage.py). Their spans use the
stable HTTP attribute names, as o11ykit's own server spans do, unless the service chose
otherwise (OTEL_SEMCONV_STABILITY_OPT_IN).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator

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
        with _stable_http_names():
            instrumentor.instrument(tracer_provider=provider)
    return "active"


_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"


@contextlib.contextmanager
def _stable_http_names() -> Iterator[None]:
    """While an instrumentor starts: the stable HTTP attribute names, unless the service set
    OTEL_SEMCONV_STABILITY_OPT_IN itself.

    OpenTelemetry's HTTP client instrumentations still default to the old names (http.method,
    http.url, http.status_code), where o11ykit's server spans, the local store's index and
    the labs use the stable ones (http.request.method, url.full, http.response.status_code):
    one trace would hold both, and a query by one name would miss half of it. They read the
    variable once a process, when the first of them starts; it is set only for that moment,
    so the service's environment (and its children's) stays as it was.
    """
    if os.environ.get(_OPT_IN) is not None:
        yield
        return
    os.environ[_OPT_IN] = "http"
    try:
        yield
    finally:
        os.environ.pop(_OPT_IN, None)
