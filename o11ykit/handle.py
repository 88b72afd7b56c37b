"""What init() returns: the live configuration, its counters, and the way to stop it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from o11ykit import backends
from o11ykit.config import ConfigError, Settings
from o11ykit.pipeline import BoundedBatchProcessor, ExportStats

log = logging.getLogger("o11ykit")


def check_app(app: Any) -> None:
    """Refuse an app= that instrument_app could not wire, before init() installs anything."""
    accepted_values = (
        "accepted values: a FastAPI or Starlette application instance (one with add_middleware)"
    )
    if isinstance(app, type):
        raise ConfigError(
            f"o11ykit init(app=...) got the class {app.__name__}, not an application; "
            f"{accepted_values}"
        )
    if not callable(getattr(app, "add_middleware", None)):
        raise ConfigError(
            f"o11ykit init(app=...) got a {type(app).__name__}, which has no add_middleware; "
            f"{accepted_values}"
        )


@dataclass
class Handle:
    settings: Settings
    provider: TracerProvider
    backend: str
    processor: BoundedBatchProcessor | None
    attached: bool = False
    resolver: Any = None
    instrumentations: dict[str, str] = field(default_factory=dict)
    closed: bool = False
    _tracers: dict[str, trace.Tracer] = field(default_factory=dict, repr=False)

    def tracer(self, name: str = "o11ykit") -> trace.Tracer:
        # Cached: the SDK builds a new scope and tracer on every get_tracer() call.
        tracer = self._tracers.get(name)
        if tracer is None:
            tracer = self._tracers[name] = self.provider.get_tracer(name)
        return tracer

    def stats(self) -> ExportStats:
        """Spans exported and dropped so far (queue full, backend failing)."""
        return self.processor.exporter.stats if self.processor else ExportStats()

    def instrument_app(self, app: Any) -> None:
        """Wire a FastAPI or Starlette app: server span, tenant and user, health excluded.
        Not when the instrumentations setting leaves fastapi out: the report says so, as
        doctor's does."""
        from o11ykit.instrumentation.fastapi import instrument_app

        check_app(app)
        wanted = self.settings.instrumentations
        if "all" not in wanted and "fastapi" not in wanted:
            self.instrumentations["fastapi"] = "skipped: not in the instrumentations setting"
            return
        try:
            self.instrumentations["fastapi"] = "active: " + instrument_app(app, self.resolver)
        except Exception as exc:  # e.g. Starlette refuses middleware once the app has started
            # init() has installed the provider by now: failing here would leave it half done.
            reason = str(exc) if isinstance(exc, RuntimeError) else f"{type(exc).__name__}: {exc}"
            self.instrumentations["fastapi"] = f"skipped: {reason}"
            log.warning("o11ykit: could not instrument the app: %s", reason)

    def trace_link(self, trace_id: str) -> str | None:
        return backends.BY_NAME[self.backend].trace_link(self.settings, trace_id)

    def force_flush(self, timeout: float = 1.0) -> bool:
        return self.processor.force_flush(int(timeout * 1000)) if self.processor else True

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush within `timeout` seconds (default: the shutdown_timeout setting), then stop."""
        if self.closed:
            return
        self.closed = True
        if self.processor is not None:
            wait = self.settings.shutdown_timeout if timeout is None else timeout
            self.processor.shutdown(wait)
        from o11ykit.instrumentation import logs, stop_waiting

        stop_waiting(self.instrumentations)
        logs.disable()
