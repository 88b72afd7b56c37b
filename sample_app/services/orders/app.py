"""Orders: quotes, checkout (prices from catalog, charge at payments), history, sales."""

from __future__ import annotations

import logging
import os
import threading
import time

import httpx
from fastapi import HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Index, select, text
from sqlalchemy.orm import Session, selectinload

from sample_app import db, settings
from sample_app.runtime import create_app
from sample_app.services.orders import invoicing, models, payments_client

log = logging.getLogger("sample_app.orders")
env = settings.read(default_service="orders")
engine = db.make_engine(models.SCHEMA, env.data_dir, env.database_url)
app, switches = create_app(env, sql_engine=engine)
catalog = httpx.Client(base_url=env.url_of("catalog"), timeout=5.0)
payments = httpx.Client(timeout=payments_client.NORMAL_TIMEOUT_S)
PAYMENTS_URL = env.url_of("payments")
# Where payments lived before its move; nothing answers there any more.
LEGACY_PAYMENTS_URL = os.environ.get("PAYMENTS_LEGACY_URL", "http://127.0.0.1:9")
HISTORY_PAGE = 20


class Item(BaseModel):
    product_id: int
    quantity: int = Field(ge=1, le=100)


class QuoteRequest(BaseModel):
    shop: str
    items: list[Item] = Field(min_length=1, max_length=50)


class OrderRequest(QuoteRequest):
    customer: str = Field(min_length=1, max_length=models.CUSTOMER_MAX_LENGTH)
    card: str = "tok_visa"


def _quote(request: QuoteRequest) -> tuple[int, str, dict[int, int]]:
    answer = catalog.post(
        "/prices", json={"shop": request.shop, "product_ids": [i.product_id for i in request.items]}
    )
    if answer.status_code == 404:
        raise HTTPException(404, answer.json().get("detail", "unknown products"))
    if answer.status_code >= 400:
        raise HTTPException(502, f"catalog answered {answer.status_code}")
    body = answer.json()
    prices = {int(k): v for k, v in body["prices"].items()}
    total = sum(prices[i.product_id] * i.quantity for i in request.items)
    return total, body["currency"], prices


@app.post("/quotes")
def quote(request: QuoteRequest):
    total, currency, _ = _quote(request)
    return {"total_minor": total, "currency": currency}


def _payment_target() -> tuple[str, payments_client.Policy]:
    url = LEGACY_PAYMENTS_URL if switches.broken("stale_endpoint") else PAYMENTS_URL
    storm = switches.broken("payment_timeout")
    if storm:
        policy = payments_client.Policy(
            timeout_s=storm.param("timeout_s"), retries=storm.param("retries"), backoff_s=0.0
        )
    else:
        policy = payments_client.Policy()
    return url, policy


@app.post("/orders", status_code=201)
def place_order(request: OrderRequest):
    total, currency, prices = _quote(request)
    url, policy = _payment_target()
    reference = f"{request.shop}:{request.customer}:{time.time_ns()}"
    try:
        charge = payments_client.charge(
            payments,
            f"{url}/charges",
            {
                "amount_minor": total,
                "currency": currency,
                "card": request.card,
                "reference": reference,
            },
            policy,
        )
    except payments_client.PaymentError as exc:
        raise HTTPException(503, str(exc)) from None
    if charge.status_code == 402:
        return JSONResponse({"error": "card declined"}, status_code=402)
    if charge.status_code >= 400:
        raise HTTPException(502, f"payments answered {charge.status_code}")
    with Session(engine) as session, session.begin():
        number = session.execute(
            text(
                "UPDATE shop_counters SET next_number = next_number + 1 WHERE shop = :shop "
                "RETURNING next_number - 1"
            ),
            {"shop": request.shop},
        ).scalar_one()
        order = models.Order(
            shop=request.shop,
            customer=request.customer,
            number=number,
            created_at=int(time.time()),
            total_minor=total,
            currency=currency,
            status="paid",
            items=[
                models.OrderItem(
                    product_id=i.product_id, quantity=i.quantity, price_minor=prices[i.product_id]
                )
                for i in request.items
            ],
        )
        session.add(order)
        session.flush()
        order_id = order.id
    return {"order_id": order_id, "number": number, "total_minor": total, "currency": currency}


@app.get("/orders")
def history(shop: str, customer: str, limit: int = Query(HISTORY_PAGE, ge=1, le=100)):
    query = (
        select(models.Order)
        .where(models.Order.shop == shop, models.Order.customer == customer)
        .order_by(models.Order.id.desc())
    )
    if not switches.broken("unbounded_history"):
        query = query.limit(limit)
    if not switches.broken("lazy_items"):
        query = query.options(selectinload(models.Order.items))
    with Session(engine) as session:
        orders = session.scalars(query).all()
        page = [
            {
                "id": o.id,
                "number": o.number,
                "created_at": o.created_at,
                "total_minor": o.total_minor,
                "currency": o.currency,
                "items": [{"product_id": i.product_id, "quantity": i.quantity} for i in o.items],
            }
            for o in orders
        ]
    return {"orders": page[:limit], "count": len(page[:limit])}


_SALES = text(
    "SELECT created_at / 86400 AS day, COUNT(*), SUM(total_minor) FROM orders "
    "WHERE shop = :shop AND created_at >= :since GROUP BY created_at / 86400 ORDER BY day"
)


@app.get("/sales")
def sales(shop: str, days: int = Query(30, ge=1, le=90)):
    since = int(time.time()) - days * 86_400
    with engine.connect() as connection:
        rows = connection.execute(_SALES, {"shop": shop, "since": since}).all()
    return {
        "days": [{"day": int(d) * 86_400, "orders": n, "total_minor": int(t)} for d, n, t in rows]
    }


@app.get("/health")
def health():
    return {"ok": True, "service": env.service.name, "version": env.service.version}


# --- background work: the invoice job, and the index the missing-index fault drops -------


def _index_exists() -> bool:
    from sqlalchemy import inspect

    return any(ix["name"] == models.SALES_INDEX for ix in inspect(engine).get_indexes("orders"))


def _sales_index() -> Index:
    # The model's own definition, so the fix recreates exactly the index the schema has.
    return next(ix for ix in models.Order.__table__.indexes if ix.name == models.SALES_INDEX)


def _reconcile_index() -> None:
    dropped = any(not f.get("fixed") for f in switches.injected("dropped_index"))
    if dropped == (not _index_exists()):
        return
    with engine.begin() as connection:
        if dropped:
            connection.execute(text(f"DROP INDEX {models.SALES_INDEX}"))
        else:
            _sales_index().create(connection)
            if engine.dialect.name == "postgresql":
                connection.execute(text("ANALYZE orders"))


def _background(stop: threading.Event) -> None:
    while not stop.wait(0.25):
        try:
            _reconcile_index()
        except Exception:
            log.exception("index reconciler failed; retrying")


_stop = threading.Event()
if switches.engine is not None:
    threading.Thread(target=_background, args=(_stop,), daemon=True, name="index").start()
    threading.Thread(
        target=invoicing.run_forever,
        args=(engine, switches, _stop),
        daemon=True,
        name="invoice-job",
    ).start()
