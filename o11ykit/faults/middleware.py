"""The generic kinds, carried out on requests by an ASGI middleware inside o11ykit's own.

Inside the tracing middleware, the request's server span is current and its tenant and
user are known: injected latency and errors are part of the request as the service's
telemetry records it, with nothing in it that says why. The admin API is answered here
too, before any fault applies, so a fault can never lock its facilitator out.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.routing import Match

from o11ykit.faults.engine import FaultEngine, request_route
from o11ykit.faults.pool import PoolHolder

ASGIApp = Callable[..., Any]
ADMIN_PATH = "/_o11ykit/faults"
OWN_PREFIX = "/_o11ykit/"


def install_middleware(
    app: Any,
    engine: FaultEngine,
    *,
    admin: ASGIApp | None,
    pool: PoolHolder | None,
    untouched: Callable[[str], bool] | None = None,
) -> None:
    """Add FaultMiddleware as the innermost user middleware of a FastAPI/Starlette app.

    add_middleware() puts each new middleware outermost, so the innermost place is inside
    o11ykit's tracing middleware whether init(app=app) ran before this or runs after.
    """
    if getattr(app, "middleware_stack", None) is not None:
        raise RuntimeError("o11ykit.faults.enable() must be called before the app serves requests")
    app.user_middleware.append(
        Middleware(
            FaultMiddleware,
            engine=engine,
            admin=admin,
            pool=pool,
            routes=app.router.routes,
            untouched=untouched,
        )
    )


class FaultMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        engine: FaultEngine,
        admin: ASGIApp | None = None,
        pool: PoolHolder | None = None,
        routes: list[Any] | None = None,
        untouched: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        self.engine = engine
        self.admin = admin
        self.pool = pool
        self.routes = routes if routes is not None else []
        # Health checks: untraced, so a fault there could not be diagnosed, only get the
        # service restarted (and its faults forgotten) by the orchestrator.
        self.untouched = untouched or (lambda path: False)
        self._jitter = random.Random()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The guard again, on every request (one identity check): init() may have declared
        # production after enable() ran; the engine then turns itself off, once.
        allowed = self.engine.allowed()
        path = scope.get("path", "")
        if path.startswith(OWN_PREFIX) or path == OWN_PREFIX[:-1]:
            # Without a token the admin API does not exist: the app answers its own 404.
            if self.admin is not None and (path == ADMIN_PATH or path.startswith(ADMIN_PATH + "/")):
                await self.admin(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return
        token = request_route.set(path)
        try:
            if not self.engine.has_faults or self.untouched(path):
                await self.app(scope, receive, send)
            else:
                await self._with_faults(scope, receive, send, path)
        finally:
            request_route.reset(token)

    async def _with_faults(self, scope: dict, receive: Callable, send: Callable, path: str) -> None:
        engine = self.engine
        hold = engine.broken("pool_hold", route=path)
        if hold is not None and hold.reached and self.pool is not None:
            try:
                await run_in_threadpool(
                    self.pool.hold, hold.spec.id, hold.param("connections"), hold.param("hold_s")
                )
            except Exception:  # the pool's own timeout: fail as the leaking endpoint would
                self._route(scope)
                raise
        delay_ms = 0.0
        for latency in engine.all_active("latency", route=path):
            if not latency.fixed:
                extra = self._jitter.uniform(0, latency.param("jitter_ms"))
                delay_ms += (latency.param("ms") + extra) * latency.intensity
        if delay_ms > 0:
            await anyio.sleep(delay_ms / 1000.0)
        timeout = engine.broken("timeout", route=path)
        if timeout is not None and timeout.reached:
            self._route(scope)
            await anyio.sleep(timeout.param("after_s"))
            await _answer(send, 504)
            return
        error = engine.broken("error", route=path)
        if error is not None and error.reached:
            self._route(scope)
            await _answer(send, error.param("status"))
            return
        exception = engine.broken("exception", route=path)
        if exception is not None and exception.reached:
            self._route(scope)
            raise RuntimeError(exception.param("message"))
        await self.app(scope, receive, send)

    def _route(self, scope: dict) -> None:
        """Name the route the request was for, as the router would have: a failure answered
        here must look like the endpoint's own (span name and http.route), not a stray."""
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                return


async def _answer(send: Callable, status: int) -> None:
    """A bare 5xx, as a failing server or proxy sends it."""
    try:
        body = HTTPStatus(status).phrase.encode()
    except ValueError:
        body = b"Server Error"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
