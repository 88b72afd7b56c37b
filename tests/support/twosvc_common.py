"""What the two test services share: their logging set-up, app and database."""

from __future__ import annotations

import importlib.util
import logging
import os

from fastapi import FastAPI
from sqlalchemy import Engine, create_engine, text

import o11ykit

# The client libraries the edge calls inner with, one request each: httpx2 where it is
# installed (it needs Python 3.11).
CLIENTS = ("httpx", "requests", *(("httpx2",) if importlib.util.find_spec("httpx2") else ()))

# The app's own logging setup: o11ykit only adds attributes to records, never handlers.
# The test parses these key=value fields from both services' files with one parser, so
# keep each one a single token.
LOG_FORMAT = (
    "%(name)s trace_id=%(trace_id)s span_id=%(span_id)s tenant=%(tenant.id)s "
    "user=%(enduser.id)s pseudo=%(enduser.pseudo.id)s %(message)s"
)


def service_logger(name: str) -> logging.Logger:
    log = logging.getLogger(name)
    handler = logging.FileHandler(os.environ["TWOSVC_LOG_FILE"], encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    # Uvicorn's own handlers must not print (or re-format) these lines a second time.
    log.propagate = False
    return log


def service(name: str, *setup_sql: str) -> tuple[FastAPI, Engine]:
    """The traced app and its SQLite database, set up outside any request (no spans)."""
    app = FastAPI()
    o11ykit.init(name, "otlp", app=app)
    engine = create_engine(f"sqlite:///{os.environ['TWOSVC_DB']}")
    with engine.begin() as setup:
        for statement in setup_sql:
            setup.execute(text(statement))
    return app, engine
