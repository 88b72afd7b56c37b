"""The inner service of tests/test_two_services.py, run by uvicorn in its own process.

    O11YKIT_BAGGAGE_TRUST_INBOUND=true \
        python -m uvicorn tests.support.twosvc_inner:app --host 127.0.0.1 --port PORT

Configured by ``TWOSVC_DB``, ``TWOSVC_LOG_FILE`` and ``O11YKIT_*`` like the edge. It is an
internal service: the test starts it trusting inbound baggage, which is how it learns the
tenant and user (the edge sends no X-Tenant-ID / X-User-ID headers).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import text

from tests.support.twosvc_common import service, service_logger

log = service_logger("twosvc.inner")
app, engine = service(
    "inner",
    "CREATE TABLE IF NOT EXISTS stock (item_id INTEGER PRIMARY KEY, qty INT)",
    "INSERT OR IGNORE INTO stock (item_id, qty) VALUES (1, 10)",
)


@app.get("/stock/{item_id}")
def get_stock(item_id: int, request: Request) -> dict[str, Any]:
    """Echoes the baggage and trace context headers it received, so the test can see what
    the edge forwarded."""
    log.info("stock lookup item_id=%s", item_id)
    with engine.connect() as connection:
        qty = connection.execute(
            text("SELECT qty FROM stock WHERE item_id = :item_id"), {"item_id": item_id}
        ).scalar()
    context = {name: request.headers.get(name) for name in ("traceparent", "b3", "x-b3-traceid")}
    return {
        "item_id": item_id,
        "qty": qty,
        "baggage_seen": request.headers.get("baggage"),
        "context_seen": context,
    }


@app.get("/health")
def health() -> dict[str, str]:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1 AS health_probe"))
    return {"status": "ok"}
