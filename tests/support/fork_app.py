"""A FastAPI app for `uvicorn --workers N`: every worker is spawned, imports this module and
so calls o11ykit.init() itself. The endpoint comes from FORK_APP_ENDPOINT."""

from __future__ import annotations

import os
import time

from fastapi import FastAPI
from opentelemetry import trace

import o11ykit

app = FastAPI()
handle = o11ykit.init(
    service_name="fork-app",
    backend="otlp",
    endpoint=os.environ["FORK_APP_ENDPOINT"],
    app=app,
    schedule_delay=0.2,
)


@app.get("/pid")
async def pid(n: int = -1, hold: float = 0.0) -> dict[str, int]:
    span = trace.get_current_span()
    span.set_attribute("worker.pid", os.getpid())
    span.set_attribute("request.number", n)
    # Holding the event loop a moment makes the other worker take the next connections.
    time.sleep(min(hold, 0.5))
    return {"pid": os.getpid()}


@app.get("/health")  # excluded from tracing by default: readiness polls make no spans
async def health() -> dict[str, str]:
    return {"status": "ok"}
