"""enable(app): the one call that gives a FastAPI app fault injection, or nothing at all."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from o11ykit import state
from o11ykit.config import Settings, load_settings
from o11ykit.faults.audit import AuditLog
from o11ykit.faults.engine import FaultEngine
from o11ykit.faults.guard import RunningEnvironment, injection_allowed
from o11ykit.faults.kinds import POOL_HOLD
from o11ykit.faults.spec import KindSpec

MARK = "_o11ykit_fault_engine"
_lock = threading.Lock()
_current: FaultEngine | None = None


def current_engine() -> FaultEngine | None:
    """The engine enable() installed in this process (the last one), or None."""
    return _current


def enable(
    app: Any,
    *,
    enabled: bool | None = None,
    token: str | None = None,
    audit_file: str | None = None,
    service_version: str | None = None,
    kinds: Mapping[str, KindSpec] | None = None,
    tenants: Collection[str] | None = None,
    users: Collection[str] | None = None,
    audit: AuditLog | None = None,
    clock: Callable[[], float] = time.monotonic,
    sqlalchemy_engine: Any = None,
    settings: Settings | None = None,
) -> FaultEngine | None:
    """Install fault injection on `app` when enabled; None (and nothing installed) when not.

    Enabled by `enabled=True` or the `faults` setting (O11YKIT_FAULTS=true), never in
    production: checked here, and again by the engine whenever o11ykit's running handle
    changes (init() may run after this and declare production). The admin API at
    /_o11ykit/faults exists only with a token (argument or O11YKIT_FAULTS_TOKEN).
    `pool_hold` needs the service's `sqlalchemy_engine`.
    """
    global _current
    with _lock:
        existing = getattr(app, MARK, None)
        if existing is not None:
            return existing
        settings = settings or _settings()
        if not injection_allowed(enabled, settings):
            return None
        offered = dict(kinds or {})
        if sqlalchemy_engine is None:
            offered.setdefault(
                "pool_hold",
                dataclasses.replace(
                    POOL_HOLD, unavailable="the service passed no sqlalchemy_engine to enable()"
                ),
            )
        engine = FaultEngine(
            service_version=service_version or _service_version(settings),
            kinds=offered,
            tenants=tenants,
            users=users,
            audit=audit or AuditLog(audit_file or settings.faults_audit_file),
            clock=clock,
            guard=RunningEnvironment(),
            routes=lambda: route_templates(app),
        )
        _install(app, engine, token or settings.faults_token, sqlalchemy_engine, settings)
        setattr(app, MARK, engine)
        _current = engine
        return engine


def _install(
    app: Any, engine: FaultEngine, token: str | None, sqlalchemy_engine: Any, settings: Settings
) -> None:
    from o11ykit.faults.admin import AdminApi
    from o11ykit.faults.middleware import install_middleware
    from o11ykit.faults.pool import PoolHolder
    from o11ykit.instrumentation.asgi import path_matcher

    pool = None
    if sqlalchemy_engine is not None:
        pool = PoolHolder(sqlalchemy_engine)
        engine.subscribe(pool.on_change)
    admin = AdminApi(engine, token) if token else None
    untouched = path_matcher(settings.excluded_paths)
    install_middleware(app, engine, admin=admin, pool=pool, untouched=untouched)


def route_templates(app: Any) -> list[str] | None:
    """The paths the app routes (`/products/{product_id}`), read when a fault is injected,
    once every route is added; a mount stands for everything under it. None when a route
    has no path (a host route) or the app has none yet: the scope is then not checked."""
    templates = []
    for route in getattr(getattr(app, "router", None), "routes", None) or ():
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            return None
        is_mount = hasattr(route, "routes") and hasattr(route, "app")
        templates.append(path.rstrip("/") + "/{rest:path}" if is_mount else path)
    return templates or None


def _settings() -> Settings:
    handle = state.current()
    return handle.settings if handle is not None else load_settings()


def _service_version(settings: Settings) -> str | None:
    """service.version as the process's spans carry it, so `versions` scopes agree with them."""
    handle = state.current()
    if handle is not None:
        version = handle.provider.resource.attributes.get("service.version")
        return str(version) if version else None
    if settings.service_version:
        return settings.service_version
    from o11ykit.resource import default_service_name, detect_version

    return detect_version(settings.service_name or default_service_name(), os.environ)
