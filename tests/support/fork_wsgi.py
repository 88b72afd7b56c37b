"""A plain WSGI app for `gunicorn --preload -w N`: init() runs once, in the master, at import;
the workers are forked from it and must still report their own pid and instance id.

The endpoint comes from FORK_WSGI_ENDPOINT. `?tenant=` names the request's tenant, `?n=` numbers
it, `?hold=` keeps the worker busy a moment. `/health` makes no span.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import o11ykit

MASTER_PID = os.getpid()
handle = o11ykit.init(
    service_name="fork-wsgi",
    backend="otlp",
    endpoint=os.environ["FORK_WSGI_ENDPOINT"],
    schedule_delay=0.2,
)
tracer = handle.tracer("fork-wsgi")


def _respond(start_response: Callable[..., Any], payload: dict[str, Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(payload).encode()]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/health":
        return _respond(start_response, {"status": "ok"})
    query = {key: values[0] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
    with (
        o11ykit.context(tenant_id=query.get("tenant", "acme")),
        tracer.start_as_current_span("wsgi-request") as span,
    ):
        span.set_attribute("worker.pid", os.getpid())
        span.set_attribute("request.number", int(query.get("n", "-1")))
        # A sync worker serves one request at a time: holding it sends the next to the other.
        time.sleep(min(float(query.get("hold", "0")), 0.5))
    return _respond(start_response, {"pid": os.getpid(), "master_pid": MASTER_PID})
