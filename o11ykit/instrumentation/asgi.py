"""The edge middleware: who the request is for, and the server span if nobody else made one.

It works the same under FastAPI's native OpenTelemetry, the contrib ASGI middleware or
neither: a SERVER span already current is adopted and stamped, otherwise one is started.
Never both, never neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, StatusCode

from o11ykit import state
from o11ykit.baggage import read_inbound
from o11ykit.context import (
    ENDUSER_PSEUDO_ID,
    TENANT_ID,
    UNTRACED,
    policy,
    reset_identity,
    set_identity,
    stamp,
)
from o11ykit.pipeline import OncePerInterval

ASGIApp = Callable[..., Any]
Resolver = Callable[[Any], "tuple[str | None, str | None]"]


class _ScopeHeaders(Getter[dict]):
    """Reads the raw ASGI header list only for the keys the propagators ask for."""

    def get(self, carrier: dict, key: str) -> list[str] | None:
        wanted = key.lower().encode("latin-1")
        values = [v.decode("latin-1") for k, v in carrier.get("headers", ()) if k == wanted]
        return values or None

    def keys(self, carrier: dict) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier.get("headers", ())]


_GETTER = _ScopeHeaders()
# The headers that carry a caller's trace context, by propagator: a request with none of
# them starts a trace without asking the propagators. B3 comes as one header or several.
_CONTEXT_HEADERS = {
    "tracecontext": (b"traceparent",),
    "b3": (b"b3", b"x-b3-traceid"),
    "b3multi": (b"b3", b"x-b3-traceid"),
}
# o11ykit's own endpoints (the fault admin API): a drill's controls must leave no trace.
OWN_PATHS = ("/_o11ykit",)


def path_matcher(paths: Iterable[str]) -> Callable[[str], bool]:
    """Matches each path and everything below it (`/health` and `/health/db`)."""
    exact = frozenset(paths)
    prefixes = tuple(p.rstrip("/") + "/" for p in exact)
    return lambda path: path in exact or path.startswith(prefixes)


class _EdgeRules:
    """What the middleware needs from the settings, prepared once instead of per request."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.excluded = path_matcher((*settings.excluded_paths, *OWN_PATHS))
        # Inbound baggage names the tenant and user only where it is trusted and read at all.
        self.trust_baggage = settings.baggage_trust_inbound and "baggage" in settings.propagators
        # ASGI servers give header names in lower case.
        self.wanted = {
            settings.tenant_header.lower().encode("latin-1"): "tenant",
            settings.user_header.lower().encode("latin-1"): "user",
            b"baggage": "baggage",
            **{
                name: "context"
                for propagator in settings.propagators
                for name in _CONTEXT_HEADERS.get(propagator, ())
            },
        }

    def headers(self, scope: dict) -> dict[str, str]:
        found: dict[str, str] = {}
        wanted = self.wanted
        for name, value in scope.get("headers", ()):
            role = wanted.get(name)
            if role is not None:
                found[role] = value.decode("latin-1")
        return found


class TracingMiddleware:
    """ASGI middleware: tenant and user from the edge request, onto spans and logs.

    `init(app=app)` and `o11ykit.instrument_app(app)` install it; it can also be added
    by hand with `app.add_middleware(TracingMiddleware, resolver=...)`. The resolver takes
    a Starlette `Request` and returns `(tenant_id, user_id)`, e.g. from JWT claims.
    """

    def __init__(self, app: ASGIApp, resolver: Resolver | None = None) -> None:
        self.app = app
        self.resolver = resolver
        self._rules: _EdgeRules | None = None

    def _rules_for(self, settings: Any) -> _EdgeRules:
        rules = self._rules
        if rules is None or rules.settings is not settings:
            rules = self._rules = _EdgeRules(settings)
        return rules

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        handle = state.current()
        if scope["type"] == "lifespan" and handle is not None:
            await self.app(scope, receive, _flushing_at_shutdown(send, handle))
            return
        if scope["type"] != "http" or handle is None:
            await self.app(scope, receive, send)
            return
        rules = self._rules_for(handle.settings)
        if rules.excluded(scope.get("path", "")):
            # Under an unsampled parent nothing below is recorded: a health check's SQL
            # does not become a root span of its own.
            token = otel_context.attach(UNTRACED)
            try:
                await self.app(scope, receive, send)
            finally:
                otel_context.detach(token)
            return
        headers = rules.headers(scope)
        identity = self._identity(scope, headers, rules, handle.resolver)
        current = trace.get_current_span()
        if current.is_recording() and getattr(current, "kind", None) is SpanKind.SERVER:
            stamp(current, identity)
            token = set_identity(identity)
            try:
                await self.app(scope, receive, send)
            finally:
                reset_identity(token)
            return
        # Without a caller's trace context (or trusted baggage) there is nothing to extract.
        extract = "context" in headers or ("baggage" in headers and rules.trust_baggage)
        tracer = handle.tracer("o11ykit.asgi")
        await self._traced(scope, receive, send, identity, tracer, extract)

    def _identity(
        self, scope: dict, headers: dict[str, str], rules: _EdgeRules, default: Resolver | None
    ) -> Any:
        settings = rules.settings
        resolver = self.resolver or default
        limit = settings.baggage_max_value_length
        if resolver is not None:
            tenant_id, user_id = _resolve(resolver, scope)
        else:
            tenant_id, user_id = headers.get("tenant"), headers.get("user")
        tenant_id = tenant_id if tenant_id and len(tenant_id) <= limit else None
        user_id = user_id if user_id and len(user_id) <= limit else None
        pseudonymized = False
        if rules.trust_baggage and (tenant_id is None or user_id is None):
            inbound = read_inbound(headers.get("baggage"), settings.baggage_max_entries, limit)
            tenant_id = tenant_id or inbound.get(TENANT_ID)
            if user_id is None and ENDUSER_PSEUDO_ID in inbound:
                user_id, pseudonymized = inbound[ENDUSER_PSEUDO_ID], True
            user_id = user_id or inbound.get("enduser.id")
        return policy.identity(tenant_id, user_id, pseudonymized=pseudonymized)

    async def _traced(self, scope, receive, send, identity, tracer, extract: bool) -> None:
        method = scope.get("method", "HTTP")
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": scope.get("path", ""),
            "url.scheme": scope.get("scheme", "http"),
        }
        if scope.get("query_string"):
            attributes["url.query"] = scope["query_string"].decode("latin-1")
        if identity is not None:
            attributes.update(identity.attributes)
        parent = propagate.extract(scope, getter=_GETTER) if extract else None
        span = tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        status: list[int] = []

        async def send_with_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        token = otel_context.attach(trace.set_span_in_context(span, parent))
        identity_token = set_identity(identity)
        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_with_status)
        except BaseException as exc:
            error = exc
            raise
        finally:
            reset_identity(identity_token)
            otel_context.detach(token)
            _finish(span, scope, method, status, error)


_resolver_warning = OncePerInterval()


def _resolve(resolver: Resolver, scope: dict) -> tuple[str | None, str | None]:
    """The user's resolver, which must not be able to fail the request it describes."""
    from starlette.requests import Request

    try:
        tenant_id, user_id = resolver(Request(scope))
    except Exception as exc:  # a telemetry helper must not break the request it describes
        _resolver_warning.warn(
            "o11ykit: the tenant/user resolver raised %s: %s; this request is not attributed",
            type(exc).__name__,
            exc,
        )
        return None, None
    return (str(tenant_id) if tenant_id else None), (str(user_id) if user_id else None)


def _finish(
    span: trace.Span, scope: dict, method: str, status: list[int], error: BaseException | None
) -> None:
    """Everything known only at the end, set in one call: each call takes the span's lock."""
    final: dict[str, Any] = {}
    route = getattr(scope.get("route"), "path", None)
    if route:
        final["http.route"] = route
        span.update_name(f"{method} {route}")
    if status:
        final["http.response.status_code"] = status[0]
    if error is not None:
        final["error.type"] = type(error).__qualname__
    elif status and status[0] >= 500:
        # An app that turned its exception into a 500 and said which keeps its error.type:
        # "KeyError" tells a learner more than "500".
        recorded = getattr(span, "attributes", None) or {}
        final["error.type"] = recorded.get("error.type") or str(status[0])
    span.set_attributes(final)
    if "error.type" in final:
        span.set_status(StatusCode.ERROR)
    span.end()


def _flushing_at_shutdown(send: Callable, handle: Any) -> Callable:
    """Flush when the server reports the app shut down.

    uvicorn re-raises SIGTERM after a graceful shutdown, so the process ends without
    running atexit hooks: under Docker or Kubernetes the last spans would be lost.
    """

    async def send_after_flush(message: dict) -> None:
        if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            handle.force_flush(handle.settings.shutdown_timeout)
        await send(message)

    return send_after_flush
