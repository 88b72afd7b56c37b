"""A stand-in for the sample gateway's public API, for tests/test_traffic.py.

    TRAFFIC_GATEWAY_RECORD=requests.jsonl \
        python -m uvicorn tests.support.traffic_gateway:app --host 127.0.0.1 --port PORT

Answers every route the traffic generator calls with canned bodies of the real shapes,
and appends what it received (method, path, query, tenant, user, JSON body) to the
record file, one JSON line per request, before it answers: once a run has returned, every
request it made is in the file. No telemetry, no database: only the HTTP contract.
"""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sample_app import dataset

_record = open(os.environ["TRAFFIC_GATEWAY_RECORD"], "a", encoding="utf-8", buffering=1)  # noqa: SIM115
app = FastAPI()


async def record(request: Request) -> Any:
    """Writes down the request and returns its JSON body (None without one)."""
    raw = await request.body()
    body = json.loads(raw) if raw else None
    entry = {
        "method": request.method,
        "path": request.url.path,
        "query": list(request.query_params.multi_items()),
        "tenant": request.headers.get("x-tenant-id"),
        "user": request.headers.get("x-user-id"),
        "user_agent": request.headers.get("user-agent"),
        "body": body,
    }
    _record.write(json.dumps(entry) + "\n")
    return body


def _product(product_id: int) -> dict[str, Any]:
    return {"id": product_id, "name": "classic kettle", "price": "19.90", "currency": "USD"}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/products")
async def search(request: Request) -> dict[str, Any]:
    await record(request)
    items = [_product(1), _product(2)]
    return {"items": items, "count": len(items)}


@app.get("/api/products/{product_id}")
async def product(product_id: int, request: Request) -> Any:
    await record(request)
    if not 1 <= product_id <= dataset.product_count():
        return JSONResponse({"detail": "no such product"}, status_code=404)
    return {**_product(product_id), "rating": 4.2, "reviews": 17}


@app.post("/api/cart/quote")
async def quote(request: Request) -> dict[str, Any]:
    body = await record(request)
    return {"total": "39.80", "currency": "USD", "items": body["items"]}


@app.post("/api/checkout")
async def checkout(request: Request) -> JSONResponse:
    body = await record(request)
    if body.get("card") != "tok_visa":
        return JSONResponse({"detail": "card declined"}, status_code=402)
    return JSONResponse({"order_id": 1001, "total": "39.80", "currency": "USD"}, status_code=201)


@app.get("/api/orders")
async def orders(request: Request) -> dict[str, Any]:
    await record(request)
    return {"orders": [{"order_id": 1000, "total": "12.00", "currency": "USD"}]}


@app.get("/api/staff/sales")
async def sales(request: Request) -> dict[str, Any]:
    await record(request)
    return {"days": int(request.query_params.get("days", 30)), "orders": 3, "revenue": "99.00"}
