"""The benchmarked service: one FastAPI endpoint doing one SQLAlchemy query on SQLite.

uvicorn imports ``benchmarks.overhead.app:app`` in its own process; the variant is
chosen by environment variables so every variant runs the very same endpoint code:

- ``BENCH_VARIANT``: ``a`` uninstrumented, ``b`` plain OpenTelemetry as its docs set
  it up, ``c`` o11ykit.
- ``BENCH_SINK``: base URL of the OTLP/HTTP sink, e.g. ``http://127.0.0.1:4318``.
- ``BENCH_DB``: path of the SQLite file (made once per run by :func:`create_db`).
- ``BENCH_INFO`` (optional): file where the app writes what its setup actually did
  (e.g. whether the SQLAlchemy instrumentor accepted the installed SQLAlchemy).
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.engine import Engine

ITEM_ROWS = 10_000
CATEGORIES = ("shoes", "shirts", "hats", "bags", "socks")

metadata = MetaData()
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("category", String(32), nullable=False),
    Column("price_cents", Integer, nullable=False),
)


def make_engine(db_path: str) -> Engine:
    # The endpoint is a sync ``def``, so FastAPI runs it in its thread pool: the
    # connection must be usable from threads other than the one that opened it.
    return create_engine(f"sqlite:///{db_path}", connect_args={"check_same_thread": False})


def create_db(db_path: str, rows: int = ITEM_ROWS) -> None:
    """Create and fill the ``items`` table (deterministic content)."""
    rng = random.Random(1234)
    engine = make_engine(db_path)
    metadata.create_all(engine)
    values = [
        {
            "id": i,
            "name": f"item-{i}",
            "category": rng.choice(CATEGORIES),
            "price_cents": rng.randrange(100, 100_000),
        }
        for i in range(1, rows + 1)
    ]
    with engine.begin() as conn:
        conn.execute(insert(items), values)
    engine.dispose()


def _instrument_none(app: FastAPI, engine: Engine, sink: str) -> dict[str, Any]:
    return {}


def _instrument_plain_otel(app: FastAPI, engine: Engine, sink: str) -> dict[str, Any]:
    """Plain OpenTelemetry, following the OTel Python docs step by step."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{sink}/v1/traces")))
    trace.set_tracer_provider(provider)
    FastAPIInstrumentor.instrument_app(app)
    # Called as documented even though the instrumentor may refuse the installed
    # SQLAlchemy (it checks a version range, logs an error and does nothing); we
    # record what happened instead of forcing it, so (b) is what a user would get.
    sqlalchemy_instrumentor = SQLAlchemyInstrumentor()
    sqlalchemy_instrumentor.instrument(engine=engine)
    conflict = get_dependency_conflicts(sqlalchemy_instrumentor.instrumentation_dependencies())
    return {
        "fastapi_instrumented": bool(getattr(app, "_is_instrumented_by_opentelemetry", False)),
        "sqlalchemy_instrumented": sqlalchemy_instrumentor.is_instrumented_by_opentelemetry,
        "sqlalchemy_conflict": str(conflict) if conflict else None,
    }


def _instrument_o11ykit(app: FastAPI, engine: Engine, sink: str) -> dict[str, Any]:
    import o11ykit

    o11ykit.init(service_name="bench", backend="otlp", endpoint=sink, app=app)
    return {"o11ykit_version": getattr(o11ykit, "__version__", None)}


INSTRUMENT: dict[str, Callable[[FastAPI, Engine, str], dict[str, Any]]] = {
    "a": _instrument_none,
    "b": _instrument_plain_otel,
    "c": _instrument_o11ykit,
}


def build_app(variant: str, sink: str, db_path: str) -> tuple[FastAPI, dict[str, Any]]:
    """Build the app and apply the variant's instrumentation; return (app, setup info)."""
    engine = make_engine(db_path)
    app = FastAPI()

    @app.get("/items/{item_id}")
    def get_item(item_id: int, q: str | None = None) -> dict[str, Any]:
        # ``token`` in the query string is deliberately not a parameter: it is the
        # secret that instrumentation may copy into url attributes (o11ykit scrubs).
        with engine.connect() as conn:
            row = conn.execute(select(items).where(items.c.id == item_id)).mappings().first()
        if row is None:
            raise HTTPException(status_code=404, detail="no such item")
        return dict(row)

    info = {"variant": variant, **INSTRUMENT[variant](app, engine, sink)}
    return app, info


def _from_environment() -> FastAPI:
    logging.basicConfig(level=logging.WARNING)
    built, info = build_app(
        os.environ.get("BENCH_VARIANT", "a"),
        os.environ.get("BENCH_SINK", "http://127.0.0.1:4318").rstrip("/"),
        os.environ["BENCH_DB"],
    )
    info_path = os.environ.get("BENCH_INFO")
    if info_path:
        with open(info_path, "w", encoding="utf-8") as handle:
            json.dump(info, handle)
    return built


app = _from_environment() if "BENCH_DB" in os.environ else FastAPI()
