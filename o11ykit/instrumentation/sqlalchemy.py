"""SQL spans through SQLAlchemy's public event API: one CLIENT span per statement.

Listening on the Engine class covers every engine, created before or after init(), on
every SQLAlchemy 2.x release (the contrib instrumentation refuses 2.1). No span per pool
checkout, and parameter values are never read. A statement outside any trace (startup
migrations, seeding) makes no span: it would only be a root span with nothing above it.
"""

from __future__ import annotations

import re
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from o11ykit.context import current_identity
from o11ykit.privacy import without_sql_literals

_tracer: Tracer | None = None
_MAX_STATEMENT = 2048
_DESCRIPTION_CACHE_LIMIT = 1024
_descriptions: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}
_TARGET = re.compile(
    r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE)\s+[\"`\[]?([A-Za-z_][\w$]*)", re.IGNORECASE
)
_SYSTEMS = {"mssql": "microsoft.sql_server", "oracle": "oracle.db"}


def _describe(statement: str, dialect: str) -> tuple[str, dict[str, str]]:
    """Span name and statement attributes, cached: an app runs the same statements again."""
    found = _descriptions.get((statement, dialect))
    if found is None:
        words = statement.split(None, 1)
        operation = words[0].upper() if words else "SQL"
        target = _TARGET.search(statement)
        # Literals go before the cut: a literal cut open would keep its first part.
        attributes = {
            "db.operation.name": operation,
            "db.query.text": without_sql_literals(statement, dialect)[:_MAX_STATEMENT],
        }
        name = operation
        if target:
            attributes["db.collection.name"] = target.group(1)
            name = f"{operation} {target.group(1)}"
        found = (name, attributes)
        if len(_descriptions) < _DESCRIPTION_CACHE_LIMIT:
            _descriptions[(statement, dialect)] = found
    return found


def _engine_attributes(engine: Any) -> dict[str, Any]:
    cached = getattr(engine, "_o11ykit_attributes", None)
    if cached is None:
        url = engine.url
        dialect = engine.dialect.name
        cached = {"db.system.name": _SYSTEMS.get(dialect, dialect)}
        if url.database:
            cached["db.namespace"] = url.database.rsplit("/", 1)[-1]
        if url.host:
            cached["server.address"] = url.host
        if url.port:
            cached["server.port"] = url.port
        engine._o11ykit_attributes = cached
    return cached


def _before(conn, cursor, statement, parameters, context, executemany) -> None:
    if context is None or _tracer is None or not trace.get_current_span().is_recording():
        return
    name, described = _describe(statement, conn.dialect.name)
    attributes = {**_engine_attributes(conn.engine), **described}
    identity = current_identity()
    if identity is not None:
        # Given at start, the stamping processor finds them there and has nothing to add.
        attributes.update(identity.attributes)
    context._o11ykit_span = _tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def _after(conn, cursor, statement, parameters, context, executemany) -> None:
    span = getattr(context, "_o11ykit_span", None)
    if span is not None:
        context._o11ykit_span = None
        span.end()


def _error(exception_context: Any) -> None:
    context = exception_context.execution_context
    span = getattr(context, "_o11ykit_span", None)
    if span is not None:
        context._o11ykit_span = None
        span.set_attribute("error.type", type(exception_context.original_exception).__qualname__)
        span.set_status(StatusCode.ERROR)
        span.end()


def enable(tracer: Tracer) -> str:
    global _tracer
    from sqlalchemy import __version__ as version
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _tracer = tracer
    if not event.contains(Engine, "before_cursor_execute", _before):
        event.listen(Engine, "before_cursor_execute", _before)
        event.listen(Engine, "after_cursor_execute", _after)
        event.listen(Engine, "handle_error", _error)
    return f"active (SQLAlchemy {version}, every engine)"
