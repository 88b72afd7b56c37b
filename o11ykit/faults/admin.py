"""The fault admin API at /_o11ykit/faults: list, inject, fix, clear, audit; bearer token.

It exists only when a token is configured, and it is never traced: a facilitator's
controls must not show up in the telemetry the teams investigate.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from o11ykit.config import ConfigError
from o11ykit.faults.engine import FaultEngine
from o11ykit.faults.middleware import ADMIN_PATH
from o11ykit.faults.spec import FaultSpecError

MAX_BODY_BYTES = 64 * 1024
ACTOR_HEADER = "x-o11ykit-actor"
_MAX_ACTOR = 64


class AdminApi:
    """An ASGI app answering everything under ADMIN_PATH."""

    def __init__(self, engine: FaultEngine, token: str) -> None:
        if not token:
            raise ValueError("the fault admin API needs a non-empty token")
        self.engine = engine
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        request = Request(scope, receive)
        if not self._authorised(request):
            response = _error(401, "a valid 'Authorization: Bearer <token>' header is required")
            response.headers["WWW-Authenticate"] = "Bearer"
        elif not self.engine.allowed():
            response = _error(403, self.engine.refused or "fault injection is refused")
        else:
            response = await self._handle(request)
        await response(scope, receive, send)

    def _authorised(self, request: Request) -> bool:
        given = request.headers.get("authorization", "").encode("latin-1", "replace")
        return hmac.compare_digest(given, self._expected)

    async def _handle(self, request: Request) -> JSONResponse:
        parts = [p for p in request.url.path[len(ADMIN_PATH) :].split("/") if p]
        method = request.method
        actor = _actor(request)
        engine = self.engine
        try:
            if not parts:
                if method == "GET":
                    return _ok({"faults": engine.faults(), "kinds": engine.describe_kinds()})
                if method == "POST":
                    spec = engine.inject(await _json(request), actor=actor)
                    return _ok(engine.fault(spec.id), 201)
                if method == "DELETE":
                    return _ok({"cleared": engine.clear(None, actor=actor)})
                return _not_allowed("GET, POST, DELETE")
            if parts == ["audit"]:
                if method == "GET":
                    return _ok({"entries": engine.audit.entries()})
                return _not_allowed("GET")
            if len(parts) == 2 and parts[1] == "fix":
                if method != "POST":
                    return _not_allowed("POST")
                body = await _json(request, default={})
                fixed = body.get("fixed", True) if isinstance(body, dict) else None
                if not isinstance(fixed, bool):
                    return _error(400, "fixed: accepted: true or false")
                engine.fix(parts[0], fixed, actor=actor)
                return _ok(engine.fault(parts[0]))
            if len(parts) == 1:
                if method == "GET":
                    return _ok(engine.fault(parts[0]))
                if method == "DELETE":
                    return _ok({"cleared": engine.clear(parts[0], actor=actor)})
                return _not_allowed("GET, DELETE")
        except FaultSpecError as exc:
            return _error(400, str(exc))
        except ConfigError as exc:  # the guard refused while this request was on its way
            return _error(403, str(exc))
        except _BadBody as exc:
            return _error(exc.status, str(exc))
        except KeyError as exc:
            return _error(404, str(exc.args[0]))
        return _error(404, f"no such endpoint; see GET {ADMIN_PATH}")


class _BadBody(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _json(request: Request, default: Any = None) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _BadBody(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise _BadBody(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not body.strip() and default is not None:
        return default
    try:
        return json.loads(body)
    except ValueError as exc:
        raise _BadBody(400, f"the body is not JSON: {exc}") from None


def _actor(request: Request) -> str:
    given = request.headers.get(ACTOR_HEADER, "").strip()
    cleaned = "".join(c for c in given if c.isprintable())[:_MAX_ACTOR]
    return cleaned or "api"


def _ok(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status)


def _not_allowed(allowed: str) -> JSONResponse:
    response = _error(405, f"method not allowed; allowed: {allowed}")
    response.headers["Allow"] = allowed
    return response
