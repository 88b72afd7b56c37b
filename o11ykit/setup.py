"""init() and the small builders it calls, each callable on its own in tests."""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from o11ykit import backends, state
from o11ykit.baggage import HostTrust, TrustedBaggagePropagator
from o11ykit.config import ConfigError, Settings, load_settings, report_once
from o11ykit.context import StampingProcessor, policy
from o11ykit.handle import Handle, check_app
from o11ykit.instrumentation import enable_all
from o11ykit.pipeline import BoundedBatchProcessor, SafeSpanExporter
from o11ykit.privacy import Scrubber
from o11ykit.resource import build_resource
from o11ykit.transport import Transport

log = logging.getLogger("o11ykit")
# On a provider: the Settings o11ykit built it from (absent on anyone else's provider).
_OURS = "_o11ykit_provider"
# On a provider: tenant/user stamping is attached; a second init() must not attach it again.
_STAMPED = "_o11ykit_stamping"
# What a provider is built from; OpenTelemetry installs one provider per process, for good.
_BAKED_IN = (
    "service_name",
    "service_version",
    "environment",
    "resource_attributes",
    "sample_ratio",
)


def build_sampler(settings: Settings) -> Sampler:
    root = ALWAYS_ON if settings.sample_ratio >= 1.0 else TraceIdRatioBased(settings.sample_ratio)
    return ParentBased(root)


def build_propagator(settings: Settings) -> CompositePropagator:
    """The propagators `settings.propagators` names, in its order. A B3 format without its
    package (o11ykit[b3]) is a ConfigError from an argument; from OTEL_PROPAGATORS it is
    said once and left out, so the service runs on with the other formats."""
    propagators: list[TextMapPropagator] = []
    for name in settings.propagators:
        if name == "tracecontext":
            propagators.append(TraceContextTextMapPropagator())
        elif name == "baggage":
            propagators.append(
                TrustedBaggagePropagator(
                    HostTrust(settings.baggage_propagate_to),
                    settings.baggage_trust_inbound,
                    settings.baggage_max_entries,
                    settings.baggage_max_value_length,
                )
            )
        elif name in ("b3", "b3multi"):
            try:
                from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
            except ImportError:
                problem = (
                    f"o11ykit setting propagators names {name}, whose package is not installed:"
                    " pip install 'o11ykit[b3]' (opentelemetry-propagator-b3)"
                )
                if settings.sources.get("propagators") == "argument":
                    raise ConfigError(problem) from None
                report_once(problem + f"; {name} is left out")
                continue
            propagators.append(B3SingleFormat() if name == "b3" else B3MultiFormat())
    return CompositePropagator(propagators)


def build_transport(settings: Settings) -> tuple[str, Transport | None]:
    """The backend's transport; a backend set only in the environment that cannot work
    is reported once and replaced by none, so a typo never takes a service down."""
    name = backends.choose(settings)
    try:
        return name, backends.BY_NAME[name].transport(settings)
    except ConfigError as exc:
        if _mistake_in_code(settings, exc):
            raise
        log.warning("%s; exporting nothing", exc)
        return "none", None


def _mistake_in_code(settings: Settings, exc: ConfigError) -> bool:
    """Whether a backend that cannot work is the code's mistake (raise) rather than the
    deployment's (warn, export nothing): a setting at fault given as an argument, or a
    backend asked for in code whose trouble no environment variable caused."""
    origins = {settings.sources.get(name, "default") for name in exc.settings}
    if "argument" in origins:
        return True
    return settings.sources.get("backend") == "argument" and origins <= {"default"}


def build_processor(
    settings: Settings, transport: Transport | None
) -> BoundedBatchProcessor | None:
    if transport is None:
        return None
    scrubber = Scrubber(settings.scrub_keys, settings.scrub_allow)
    return BoundedBatchProcessor(
        SafeSpanExporter(transport, scrubber, settings.export_timeout),
        max_queue_size=settings.max_queue_size,
        max_batch_size=settings.max_export_batch_size,
        schedule_delay=settings.schedule_delay,
        exit_timeout=settings.shutdown_timeout,
    )


def build_provider(settings: Settings) -> TracerProvider:
    """A provider with o11ykit's resource, sampler and stamping, not yet installed."""
    provider = TracerProvider(
        resource=build_resource(settings), sampler=build_sampler(settings), shutdown_on_exit=False
    )
    provider.add_span_processor(StampingProcessor())
    setattr(provider, _STAMPED, True)
    setattr(provider, _OURS, settings)
    return provider


def _warn_if_not_applied(installed: Settings, settings: Settings) -> None:
    changed = [name for name in _BAKED_IN if getattr(installed, name) != getattr(settings, name)]
    if changed:
        report_once(
            "o11ykit: init() after shutdown() keeps the tracer provider of the first init() "
            "(OpenTelemetry allows one per process); these settings changed and do not "
            f"apply: {', '.join(changed)}"
        )


def install_provider(
    settings: Settings,
    provider: TracerProvider,
    processor: BoundedBatchProcessor | None,
    explicit_backend: bool,
) -> tuple[TracerProvider, bool, BoundedBatchProcessor | None]:
    """`provider` (built by build_provider), or the one already installed with our
    processors attached to it."""
    existing = trace.get_tracer_provider()
    if isinstance(existing, TracerProvider):
        if not getattr(existing, _STAMPED, False):
            existing.add_span_processor(StampingProcessor())
            setattr(existing, _STAMPED, True)
        installed = getattr(existing, _OURS, None)
        if installed is not None:
            _warn_if_not_applied(installed, settings)
        keep_ours = installed is not None or explicit_backend
        if processor is not None and keep_ours:
            existing.add_span_processor(processor)
        if installed is None:
            log.warning(
                "o11ykit: a tracer provider was already installed (opentelemetry-instrument or "
                "another library); attaching tenant/user stamping to it%s",
                " and exporting to the configured backend" if keep_ours else ", export left to it",
            )
        return existing, installed is None, processor if keep_ours else None
    if processor is not None:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return provider, False, processor


def init(
    service_name: str | None = None,
    backend: str | None = None,
    *,
    app: Any = None,
    resolver: Any = None,
    environ: Mapping[str, str] | None = None,
    **settings: Any,
) -> Handle:
    """Trace this service: one call, safe to repeat. Returns the process's handle.

    `app` wires a FastAPI/Starlette app (not when `instrumentations` leaves fastapi out;
    anything but an app raises ConfigError); `resolver(request) -> (tenant_id, user_id)`
    replaces the X-Tenant-ID / X-User-ID headers; other keywords are settings (see
    docs/settings.md). No network call is made here.
    """
    with state.lock:
        if app is not None:
            check_app(app)  # before anything is installed: a failed init() installs nothing
        handle = state.current()
        started = handle is None
        if handle is None:
            handle = _start(
                load_settings(
                    {"service_name": service_name, "backend": backend, **settings}, environ
                ),
                resolver,
            )
        elif service_name or backend or settings or resolver:
            log.warning("o11ykit is already initialised; this init() call's settings are ignored")
        if app is not None:
            handle.instrument_app(app)
        if started and handle.settings.debug:
            _log_debug(handle)
        return handle


def _start(settings: Settings, resolver: Any) -> Handle:
    # Everything that can fail is built before anything global changes: a failed init()
    # leaves nothing installed, so a retry cannot attach a second export pipeline.
    backend, transport = build_transport(settings)
    propagator = build_propagator(settings)
    fresh_provider = build_provider(settings)
    processor = build_processor(settings, transport)
    # Only o11ykit's own settings ask for a second export from a provider already installed:
    # OTEL_TRACES_EXPORTER configures that provider's exporter (opentelemetry-instrument sets
    # it in every process it starts), which already sends the spans.
    explicit = settings.sources.get("backend") in ("argument", "O11YKIT_BACKEND")
    provider, attached, processor = install_provider(settings, fresh_provider, processor, explicit)
    policy.pseudonym_key = settings.pseudonym_key
    propagate.set_global_textmap(propagator)
    handle = Handle(settings, provider, backend, processor, attached, resolver)
    state.set_current(handle)
    handle.instrumentations = enable_all(settings, provider)
    atexit.register(handle.shutdown)
    return handle


def _log_debug(handle: Handle) -> None:
    # WARNING, not INFO: the one line debug=true asks for shows without any logging setup.
    log.warning(
        "o11ykit debug: backend=%s pid=%d; %s",
        handle.backend,
        os.getpid(),
        "; ".join(f"{name}: {status}" for name, status in handle.instrumentations.items()),
    )


def shutdown(timeout: float | None = None) -> None:
    """Flush and stop within `timeout` seconds; a dead backend cannot make this wait longer."""
    with state.lock:
        handle = state.current()
        if handle is not None:
            handle.shutdown(timeout)
            state.set_current(None)


def instrument_app(app: Any) -> None:
    """Wire an app created after init(); calls init() with the environment's settings if needed."""
    init(app=app)
