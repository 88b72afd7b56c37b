"""A FastAPI app traced by o11ykit, configured only through O11YKIT_* variables, for
tests/test_dead_backend.py: `/work` is the traced request, `/stats` the handle's counters,
`/health` (excluded from tracing) the readiness probe."""

from __future__ import annotations

from fastapi import FastAPI

import o11ykit

app = FastAPI()
handle = o11ykit.init(service_name="dead-app", app=app)


@app.get("/work")
async def work() -> dict[str, bool]:
    return {"ok": True}


@app.get("/stats")
async def stats() -> dict[str, object]:
    return handle.stats().as_dict()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
