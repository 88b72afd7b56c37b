"""The edge service of tests/test_two_services.py, run by uvicorn in its own process.

    python -m uvicorn tests.support.twosvc_edge:app --host 127.0.0.1 --port PORT

Configured entirely by the environment the test gives it:

* ``TWOSVC_INNER_URL``: base URL of the inner service;
* ``TWOSVC_DB``: this service's own SQLite file;
* ``TWOSVC_LOG_FILE``: where its log lines go, with trace and tenant correlation;
* ``O11YKIT_*``: o11ykit's settings (endpoint, schedule delay, pseudonym key, ...).

It is an edge service, so it keeps the default of ignoring inbound baggage.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import requests
from sqlalchemy import text

from tests.support.twosvc_common import CLIENTS, service, service_logger

INNER_URL = os.environ["TWOSVC_INNER_URL"].rstrip("/")
log = service_logger("twosvc.edge")
app, engine = service(
    "edge",
    "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, sku TEXT)",
    "INSERT OR IGNORE INTO orders (id, sku) VALUES (1, 'SKU-1')",
)

# trust_env=False: a proxy configured on the machine must never carry loopback calls away.
http_client = httpx.Client(base_url=INNER_URL, trust_env=False, timeout=5.0)
session = requests.Session()
session.trust_env = False
if "httpx2" in CLIENTS:
    import httpx2

    http2_client = httpx2.Client(base_url=INNER_URL, trust_env=False, timeout=5.0)


@app.get("/orders/{order_id}")
def get_order(order_id: int) -> dict[str, Any]:
    """One log line, one SQL query, then inner once per instrumented client library."""
    log.info("order lookup order_id=%s", order_id)
    with engine.connect() as connection:
        # A bound parameter: its value must never reach a span.
        row = connection.execute(
            text("SELECT id, sku FROM orders WHERE id = :order_id"), {"order_id": order_id}
        ).first()
    via_httpx = http_client.get(f"/stock/{order_id}")
    via_httpx.raise_for_status()
    via_requests = session.get(f"{INNER_URL}/stock/{order_id}", timeout=5.0)
    via_requests.raise_for_status()
    inner = {"httpx": via_httpx.json(), "requests": via_requests.json()}
    if "httpx2" in CLIENTS:
        via_httpx2 = http2_client.get(f"/stock/{order_id}")
        via_httpx2.raise_for_status()
        inner["httpx2"] = via_httpx2.json()
    return {"order_id": order_id, "sku": row.sku if row else None, "inner": inner}


@app.get("/health")
def health() -> dict[str, str]:
    """Excluded from tracing by default; its SQL (marked health_probe) must not be traced."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1 AS health_probe"))
    return {"status": "ok"}
