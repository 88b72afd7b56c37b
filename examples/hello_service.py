"""A minimal instrumented service: one FastAPI endpoint, one SQL query, one line of setup."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from fastapi import FastAPI, HTTPException
from sqlalchemy import create_engine, text

import o11ykit

DATABASE = Path(os.environ.get("HELLO_DB", "hello.db"))
engine = create_engine(f"sqlite:///{DATABASE}")
log = logging.getLogger("hello")
app = FastAPI(title="hello")
o11ykit.init(service_name="hello", app=app)

# Outside any request, so it makes no spans: there is no trace for it to belong to.
with engine.begin() as db:
    db.execute(text("CREATE TABLE IF NOT EXISTS products (id INTEGER PRIMARY KEY, name TEXT)"))
    db.execute(text("INSERT OR IGNORE INTO products VALUES (1, 'kettle'), (2, 'teapot')"))


@app.get("/products/{product_id}")
def product(product_id: int) -> dict:
    log.info("looking up product %s", product_id)
    with engine.connect() as db:
        name = db.execute(
            text("SELECT name FROM products WHERE id = :id"), {"id": product_id}
        ).scalar()
    if name is None:
        raise HTTPException(404, "no such product")
    return {"id": product_id, "name": name}


@app.get("/health")
def health() -> dict:
    with engine.connect() as db:
        db.execute(text("SELECT 1"))
    return {"ok": True}
