"""What every sample service shares: its app, o11ykit, the fault switches, its errors.

Each service is instrumented only through `o11ykit.init()`, as a user's would be.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from sqlalchemy import Engine

import o11ykit
from o11ykit.config import ConfigError
from o11ykit.faults.guard import declared_environment
from sample_app import dataset
from sample_app.faults import catalogue
from sample_app.settings import ServiceEnvironment

log = logging.getLogger("sample_app")


class Switches:
    """The fault engine as the service's code sees it: is this kind on, and is it fixed?

    With fault injection off there is no engine, and every question costs one comparison.
    """

    def __init__(self, engine: Any | None) -> None:
        self.engine = engine

    def active(self, kind: str, **match: Any) -> Any | None:
        return None if self.engine is None else self.engine.active(kind, **match)

    def broken(self, kind: str, **match: Any) -> Any | None:
        """The fault, if it touches this call, its fix switch is off and, during a ramp,
        this call is within the share its intensity reached: the kinds asked this way are
        all-or-nothing per call, so a ramp grows the share of calls that take the bug."""
        if self.engine is None:
            return None
        found = self.engine.all_active(kind, **match)
        return next((fault for fault in found if not fault.fixed and fault.reached), None)

    def fixed(self, kind: str, *, tenant: str | None = None) -> bool:
        """Whether the faults of this kind covering `tenant` are injected and all fixed.

        For a kind that acts outside requests (its cause is in the data): whether the code
        copes depends on the fix switch alone, not on this call matching the fault.
        """
        if self.engine is None:
            return False
        covering = [
            spec
            for spec in self.engine.injected(kind)
            if not spec.scope.tenants or tenant in spec.scope.tenants
        ]
        return bool(covering) and all(spec.fixed for spec in covering)

    def injected(self, kind: str) -> list[dict]:
        """Every injected fault of this kind, whoever it is scoped to (for background work)."""
        if self.engine is None:
            return []
        return [f for f in self.engine.faults() if f["kind"] == kind]


class ErrorsAsResponses:
    """An unexpected exception becomes a 500 that the server span records (error.type and
    the exception event), instead of a dropped keep-alive connection for the next caller."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            span = trace.get_current_span()
            span.record_exception(exc)
            span.set_attribute("error.type", type(exc).__qualname__)
            log.exception("unhandled error in %s", scope.get("path"))
            if started:
                raise
            body = b'{"error":"internal error"}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})


def _telemetry_defaults(env: ServiceEnvironment) -> dict[str, str]:
    service = env.service
    defaults = {
        "O11YKIT_SERVICE_NAME": service.service_name,
        "O11YKIT_SERVICE_VERSION": service.version,
    }
    # The workshop's name only where the deployment names none: a default O11YKIT_* value
    # would outrank OTEL_RESOURCE_ATTRIBUTES' deployment.environment.name=production, and
    # the fault guard would never see it.
    try:
        declared = declared_environment(os.environ)
    except ConfigError:  # malformed: o11ykit.init says so; no default may hide what it meant
        declared = "unreadable"
    if declared is None:
        defaults["O11YKIT_ENVIRONMENT"] = "workshop"
    if service.name != "gateway":
        # Internal services take tenant and user from the gateway's baggage.
        defaults["O11YKIT_BAGGAGE_TRUST_INBOUND"] = "true"
    return defaults


def create_app(
    env: ServiceEnvironment, *, sql_engine: Engine | None = None
) -> tuple[FastAPI, Switches]:
    """The service's app, traced by o11ykit, with its fault switches when injection is on."""
    app = FastAPI(title=f"sample {env.service.name}", version=env.service.version)
    app.add_middleware(ErrorsAsResponses)
    o11ykit.init(app=app, environ={**_telemetry_defaults(env), **os.environ})
    from o11ykit import faults

    kinds = kind_specs(catalogue.kinds_of(env.service.name))
    engine = faults.enable(
        app,
        kinds=kinds,
        tenants=dataset.shop_slugs(),
        service_version=env.service.version,
        sqlalchemy_engine=sql_engine,
    )
    return app, Switches(engine)


def kind_specs(kinds: Iterable[catalogue.Kind]) -> dict[str, Any]:
    """The catalogue's custom kinds as the fault engine describes kinds."""
    from o11ykit.faults import KindSpec, ParamSpec

    return {
        kind.name: KindSpec(
            name=kind.name,
            help=kind.help,
            params={
                name: ParamSpec(
                    type=param.type,
                    default=param.default,
                    min=param.minimum,
                    max=param.maximum,
                    help=param.help,
                )
                for name, param in kind.params.items()
            },
            scope_fields=kind.scope_fields,
        )
        for kind in kinds
    }


def current_span() -> trace.Span:
    return trace.get_current_span()
