"""The catalog: product search, product pages with ratings, and prices for orders."""

from __future__ import annotations

import logging
import threading

from fastapi import HTTPException, Query
from pydantic import BaseModel
from sqlalchemy import select, text

from sample_app import db, settings
from sample_app.runtime import create_app, current_span
from sample_app.services.catalog import models, pricing
from sample_app.services.catalog.ratings import RatingsCache
from sample_app.services.catalog.trending import RecentViews

log = logging.getLogger("sample_app.catalog")
env = settings.read(default_service="catalog")
VERSION = env.service.version
engine = db.make_engine(models.SCHEMA, env.data_dir, env.database_url)
app, switches = create_app(env, sql_engine=engine)
ratings = RatingsCache(engine)
recent = RecentViews()
DEFAULT_LOCALE = "en-US"

with engine.connect() as _connection:
    SHOPS = {
        slug: (shop_id, currency, locale)
        for shop_id, slug, currency, locale in _connection.execute(
            text("SELECT id, slug, currency, locale FROM shops")
        )
    }


def _shop(slug: str) -> tuple[int, str, str]:
    try:
        return SHOPS[slug]
    except KeyError:
        raise HTTPException(404, f"unknown shop {slug!r}") from None


def _price(minor: int, currency: str | None, shop: str, shop_currency: str) -> dict:
    # The NULLs are in the data, for the whole shop: the fix applies wherever they are,
    # whether or not this request matches the fault's scope.
    tolerate = currency is None and switches.fixed("null_currency", tenant=shop)
    currency = pricing.product_currency(currency, shop_currency, tolerate_null=tolerate)
    return {"price": pricing.display_price(minor, currency, VERSION), "currency": currency}


@app.get("/products")
def search(shop: str, q: str = "", locale: str | None = None, limit: int = Query(20, le=100)):
    shop_id, shop_currency, shop_locale = _shop(shop)
    wanted = locale or shop_locale
    if switches.broken("locale_filter"):
        wanted = DEFAULT_LOCALE  # the refactor's bug: the platform default, not the shop's
    rows = db_rows(
        select(
            models.Product.id,
            models.Product.name,
            models.Product.price_minor,
            models.Product.currency,
        )
        .where(
            models.Product.shop_id == shop_id,
            models.Product.locale == wanted,
            models.name_contains(q),
        )
        .order_by(models.Product.id)
        .limit(limit)
    )
    items = [{"id": r[0], "name": r[1], **_price(r[2], r[3], shop, shop_currency)} for r in rows]
    # The app's own instrumentation: how many results a search gave, on every search.
    current_span().set_attribute("app.search.results", len(items))
    return {"items": items, "count": len(items)}


def db_rows(statement) -> list:
    with engine.connect() as connection:
        return connection.execute(statement).all()


@app.get("/products/{product_id}")
def product(product_id: int, shop: str):
    shop_id, shop_currency, _ = _shop(shop)
    rows = db_rows(
        select(models.Product.name, models.Product.price_minor, models.Product.currency).where(
            models.Product.id == product_id, models.Product.shop_id == shop_id
        )
    )
    if not rows:
        raise HTTPException(404, "no such product")
    name, minor, currency = rows[0]
    stale = switches.broken("cache_ttl_zero")
    rating, reviews = ratings.get(shop_id, ttl_s=0 if stale else 60).get(product_id, (None, 0))
    buffer = switches.broken("unbounded_buffer")
    recent.record(
        product_id, extra=buffer.param("entries_per_view") if buffer else 0, bounded=buffer is None
    )
    return {
        "id": product_id,
        "name": name,
        **_price(minor, currency, shop, shop_currency),
        "rating": rating,
        "reviews": reviews,
        "trending": recent.trending(),
    }


class PriceRequest(BaseModel):
    shop: str
    product_ids: list[int]


@app.post("/prices")
def prices(request: PriceRequest):
    shop_id, shop_currency, _ = _shop(request.shop)
    rows = db_rows(
        select(models.Product.id, models.Product.price_minor, models.Product.currency).where(
            models.Product.shop_id == shop_id, models.Product.id.in_(request.product_ids)
        )
    )
    found = {
        r[0]: (r[1], _price(r[1], r[2], request.shop, shop_currency)["currency"]) for r in rows
    }
    missing = sorted(set(request.product_ids) - set(found))
    if missing:
        raise HTTPException(404, f"no such products in {request.shop}: {missing}")
    return {"currency": shop_currency, "prices": {str(k): minor for k, (minor, _) in found.items()}}


@app.get("/health")
def health():
    return {"ok": True, "service": env.service.name, "version": VERSION}


# --- data faults: the planted NULLs, written and repaired in the background -------------


class CurrencyReconciler:
    """Makes the products table match the injected null-currency faults.

    Only the primary catalog writes; the canary reads the same rows. Clearing the fault
    repairs the data; fixing it leaves the NULLs (the cause) and lets pricing cope.
    """

    def __init__(self) -> None:
        # NULLs left by a run that died with the fault on are repaired unless still wanted.
        with engine.connect() as connection:
            broken = connection.execute(
                text("SELECT DISTINCT shop_id FROM products WHERE currency IS NULL")
            ).scalars()
            by_id = {shop_id: slug for slug, (shop_id, _, _) in SHOPS.items()}
            self.applied: dict[str, float] = {by_id[i]: -1.0 for i in broken}

    def run_once(self) -> None:
        wanted = {}
        for fault in switches.injected("null_currency"):
            share = float(fault.get("params", {}).get("share", 0.34))
            for tenant in fault.get("scope", {}).get("tenants") or list(SHOPS):
                wanted[tenant] = share
        for tenant, share in wanted.items():
            if self.applied.get(tenant) != share:
                self._break(tenant, share)
        for tenant in set(self.applied) - set(wanted):
            self._repair(tenant)

    def _break(self, tenant: str, share: float) -> None:
        every = max(1, round(1 / share))
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE products SET currency = NULL WHERE shop_id = :shop AND id % :every = 0"
                ),
                {"shop": SHOPS[tenant][0], "every": every},
            )
        self.applied[tenant] = share

    def _repair(self, tenant: str) -> None:
        shop_id, currency, _ = SHOPS[tenant]
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE products SET currency = :c WHERE shop_id = :shop AND currency IS NULL"
                ),
                {"c": currency, "shop": shop_id},
            )
        del self.applied[tenant]


def _reconcile_forever(stop: threading.Event) -> None:
    reconciler = CurrencyReconciler()
    while not stop.wait(0.25):
        try:
            reconciler.run_once()
        except Exception:
            log.exception("currency reconciler failed; retrying")


if switches.engine is not None and env.service.name == "catalog":
    _stop = threading.Event()
    threading.Thread(
        target=_reconcile_forever, args=(_stop,), daemon=True, name="currency-reconciler"
    ).start()
