"""A tiny shop with fault injection, for tests/test_faults_integration.py, run by uvicorn.

    python -m uvicorn tests.support.faults_app:app --host 127.0.0.1 --port PORT

Configured by the environment the test gives it: ``SHOP_DB`` (its SQLite file) and
``O11YKIT_*`` (export endpoint, O11YKIT_FAULTS, O11YKIT_FAULTS_TOKEN, the audit file).
Its pool is small on purpose (2 connections, 1 s timeout) so a leak exhausts it quickly.
Nothing here is named after faults: the test asserts no span mentions them.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from sqlalchemy import create_engine, text

import o11ykit
import o11ykit.faults

POOL_SIZE = 2
POOL_TIMEOUT_S = 1.0
TENANTS = ("acme", "globex")

app = FastAPI()
o11ykit.init("shop", "otlp", app=app)
engine = create_engine(
    f"sqlite:///{os.environ['SHOP_DB']}",
    pool_size=POOL_SIZE,
    max_overflow=0,
    pool_timeout=POOL_TIMEOUT_S,
)
with engine.begin() as setup:
    setup.execute(text("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, sku TEXT)"))
    setup.execute(text("CREATE TABLE IF NOT EXISTS products (sku TEXT PRIMARY KEY, name TEXT)"))
    setup.execute(text("INSERT OR IGNORE INTO orders (id, sku) VALUES (1, 'SKU-1')"))
    setup.execute(text("INSERT OR IGNORE INTO products (sku, name) VALUES ('SKU-1', 'Mug')"))
o11ykit.faults.enable(app, sqlalchemy_engine=engine, tenants=TENANTS)


@app.get("/api/orders")
def orders() -> dict[str, Any]:
    with engine.connect() as db:
        rows = db.execute(text("SELECT id, sku FROM orders")).all()
    return {"orders": [{"id": r.id, "sku": r.sku} for r in rows]}


@app.get("/api/products/{sku}")
def product(sku: str) -> dict[str, Any]:
    with engine.connect() as db:
        name = db.execute(text("SELECT name FROM products WHERE sku = :sku"), {"sku": sku}).scalar()
    return {"sku": sku, "name": name}


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
