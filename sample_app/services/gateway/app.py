"""The gateway: the edge. Resolves tenant and user once (o11ykit, from X-Tenant-ID and
X-User-ID) and calls catalog and orders, passing shop and customer explicitly: baggage
carries them for telemetry only, never for business logic."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import Header, HTTPException, Query, Response
from pydantic import BaseModel

from sample_app import dataset, settings
from sample_app.runtime import create_app

env = settings.read(default_service="gateway")
app, switches = create_app(env)
_clients = {name: httpx.Client(base_url=url, timeout=10.0) for name, url in env.downstream.items()}
SHOPS = set(dataset.shop_slugs())


def _catalog() -> httpx.Client:
    """The catalog, or its canary for the share of traffic a canary rollout sends there."""
    rollout = switches.broken("canary_rollout")
    if rollout is not None and "catalog-canary" in _clients:
        return _clients["catalog-canary"]
    return _clients["catalog"]


def _tenant(x_tenant_id: str | None) -> str:
    if not x_tenant_id:
        raise HTTPException(400, "X-Tenant-ID is required")
    if x_tenant_id not in SHOPS:
        raise HTTPException(404, f"unknown shop {x_tenant_id!r}")
    return x_tenant_id


def _user(x_user_id: str | None) -> str:
    if not x_user_id:
        raise HTTPException(400, "X-User-ID is required")
    return x_user_id


def _relay(call: Any) -> Response:
    """Downstream answers pass through; a downstream failure is the gateway's 502/503/504."""
    try:
        answer: httpx.Response = call()
    except httpx.TimeoutException:
        raise HTTPException(504, "upstream timed out") from None
    except httpx.TransportError as exc:
        raise HTTPException(503, f"upstream unreachable: {type(exc).__name__}") from None
    status = 502 if answer.status_code >= 500 else answer.status_code
    return Response(answer.content, status_code=status, media_type="application/json")


@app.get("/api/products")
def search(
    q: str = "",
    locale: str | None = None,
    limit: int = Query(20, ge=1, le=100),
    x_tenant_id: str | None = Header(None),
):
    params = {"shop": _tenant(x_tenant_id), "q": q, "limit": limit}
    if locale:
        params["locale"] = locale
    return _relay(lambda: _catalog().get("/products", params=params))


@app.get("/api/products/{product_id}")
def product(product_id: int, x_tenant_id: str | None = Header(None)):
    shop = _tenant(x_tenant_id)
    return _relay(lambda: _catalog().get(f"/products/{product_id}", params={"shop": shop}))


class Cart(BaseModel):
    items: list[dict]
    card: str = "tok_visa"


@app.post("/api/cart/quote")
def quote(cart: Cart, x_tenant_id: str | None = Header(None)):
    payload = {"shop": _tenant(x_tenant_id), "items": cart.items}
    return _relay(lambda: _clients["orders"].post("/quotes", json=payload))


@app.post("/api/checkout")
def checkout(
    cart: Cart, x_tenant_id: str | None = Header(None), x_user_id: str | None = Header(None)
):
    payload = {
        "shop": _tenant(x_tenant_id),
        "customer": _user(x_user_id),
        "items": cart.items,
        "card": cart.card,
    }
    return _relay(lambda: _clients["orders"].post("/orders", json=payload))


@app.get("/api/orders")
def orders(
    limit: int = Query(20, ge=1, le=100),
    x_tenant_id: str | None = Header(None),
    x_user_id: str | None = Header(None),
):
    params = {"shop": _tenant(x_tenant_id), "customer": _user(x_user_id), "limit": limit}
    return _relay(lambda: _clients["orders"].get("/orders", params=params))


@app.get("/api/staff/sales")
def sales(
    days: int = Query(30, ge=1, le=90),
    x_tenant_id: str | None = Header(None),
    x_user_id: str | None = Header(None),
):
    shop = _tenant(x_tenant_id)
    if _user(x_user_id) != dataset.shop(shop).staff:
        raise HTTPException(403, "the sales report is for the shop's staff")
    return _relay(lambda: _clients["orders"].get("/sales", params={"shop": shop, "days": days}))


@app.get("/health")
def health():
    return {"ok": True, "service": env.service.name, "version": env.service.version}
