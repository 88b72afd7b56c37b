"""Wiring a FastAPI (or Starlette) app: one server span per request, chosen by version.

FastAPI releases with native OpenTelemetry (`FastAPI(telemetry=...)`) make the server span
themselves as soon as a tracer provider is set; o11ykit keeps that span, turns off the
three INTERNAL operation spans it adds per request and excludes health checks. Older
releases get the server span from o11ykit's own middleware. The contrib instrumentation
is not used: its extra `http send`/`receive` spans cost every request and teach nothing.
"""

from __future__ import annotations

from typing import Any

from o11ykit.instrumentation.asgi import TracingMiddleware, path_matcher

MARK = "_o11ykit_instrumented"


def native_telemetry_config(app: Any) -> dict | None:
    config = getattr(app, "_telemetry", None)
    return config if isinstance(config, dict) and "operation_spans" in config else None


def instrument_app(app: Any, excluded_paths: tuple[str, ...], resolver: Any = None) -> str:
    """Install the middleware once; return how the server span is made, for the report."""
    if getattr(app, MARK, None):
        return getattr(app, MARK)
    native = native_telemetry_config(app)
    if native is not None:
        native["operation_spans"] = False
        user_exclude = native.get("exclude")
        excluded = path_matcher(excluded_paths)

        def exclude(scope: dict) -> bool:
            if excluded(scope.get("path", "")):
                return True
            return bool(user_exclude and user_exclude(scope))

        native["exclude"] = exclude
    app.add_middleware(TracingMiddleware, resolver=resolver)
    how = (
        "server span by FastAPI's native OpenTelemetry, operation spans off"
        if native is not None and native.get("tracing", True)
        else "server span by o11ykit's middleware"
    )
    setattr(app, MARK, how)
    return how
