"""Deterministic seed data, generated in seconds: `python -m sample_app.seed`.

60 Zipf-sized shops, ~7,000 products, 250,000 reviews, 200,000 orders with ~300,000
items, and three resale accounts with thousands of orders each. Big enough that a missing
index or a missing LIMIT really hurts; the same rows every time for the same seed (only
the order dates move with the day it runs, so "the last 30 days" always has sales).
Rows go in through the driver's bulk path (executemany on SQLite, COPY on Postgres):
the ORM would take a minute for the same rows.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate
from pathlib import Path

from sqlalchemy import Engine, MetaData, inspect, text

from sample_app import dataset, db
from sample_app.services.catalog import models as catalog_models
from sample_app.services.orders import models as order_models
from sample_app.traffic.personas import zipf_rank
from sample_app.traffic.vocabulary import ADJECTIVES, SEARCH_WORDS

SEED_VERSION = "8"  # 8: the sales index covers total_minor
DAY = 86_400
BATCH = 20_000


def product_name(product_id: int) -> str:
    """The same name for the same id, in the seeder and in anything that needs to guess one."""
    rng = random.Random(product_id)
    return f"{rng.choice(ADJECTIVES)} {rng.choice(SEARCH_WORDS)} {product_id}"


def _seeded(engine: Engine) -> bool:
    if "seed_info" not in inspect(engine).get_table_names():
        return False
    with engine.connect() as connection:
        found = connection.execute(text("SELECT version FROM seed_info")).scalar()
    return found == SEED_VERSION


def _reset(engine: Engine, metadata: MetaData) -> None:
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS seed_info"))
    metadata.drop_all(engine)
    metadata.create_all(engine)


def _mark(engine: Engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # COPY wrote the ids itself; the sequences must start after them.
            for table in inspect(engine).get_table_names():
                column = inspect(engine).get_pk_constraint(table)["constrained_columns"]
                if column == ["id"]:
                    connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                        )
                    )
        connection.execute(text("CREATE TABLE seed_info (version VARCHAR(8))"))
        connection.execute(text("INSERT INTO seed_info VALUES (:v)"), {"v": SEED_VERSION})
    if engine.dialect.name == "postgresql":
        # A fresh table has no statistics: without them the planner's first minutes differ
        # from the rest of the workshop. VACUUM marks the copied pages all-visible, so the
        # sales report reads its covering index alone, as on SQLite (3 ms rather than 11 ms
        # for a big shop); it cannot run inside a transaction.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))


def bulk_insert(engine: Engine, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> int:
    count = 0
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        else:
            marks = ", ".join("?" for _ in columns)
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
            batch: list[tuple] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= BATCH:
                    cursor.executemany(sql, batch)
                    count += len(batch)
                    batch.clear()
            if batch:
                cursor.executemany(sql, batch)
                count += len(batch)
        raw.commit()
    finally:
        raw.close()
    return count


def _products() -> Iterator[tuple]:
    rng = random.Random(7)
    for shop in dataset.shops():
        for product_id in shop.product_ids:
            # Minor units: cents, or whole yen (JPY has no minor unit).
            price = rng.randint(300, 40_000)
            yield (
                product_id,
                shop.index,
                product_name(product_id),
                shop.locale,
                price,
                shop.currency,
            )


def _reviews() -> Iterator[tuple]:
    rng = random.Random(11)
    shops = dataset.shops()
    by_weight = _cumulative_shop_weights()
    for review_id in range(1, dataset.REVIEW_COUNT + 1):
        shop = rng.choices(shops, cum_weights=by_weight)[0]
        product = shop.first_product_id + int(rng.paretovariate(1.2) - 1) % shop.product_count
        yield (review_id, product, shop.index, rng.choices(_RATINGS, cum_weights=_BY_RATING)[0])


# Ratings 1 to 5, weighted 1, 1, 2, 4, 6.
_RATINGS = (1, 2, 3, 4, 5)
_BY_RATING = (1, 2, 4, 8, 14)


def _cumulative_shop_weights() -> list[float]:
    # Given to choices() as cum_weights: the same draws as weights=, which it would sum
    # again at each of the 450,000 calls (a fifth of the seed's time).
    return list(accumulate(dataset.shop_weight(s.index) for s in dataset.shops()))


def seed_catalog(engine: Engine) -> dict[str, int]:
    metadata = catalog_models.Base.metadata
    _reset(engine, metadata)
    shops = [(s.index, s.slug, s.currency, s.locale) for s in dataset.shops()]
    counts = {
        "shops": bulk_insert(engine, "shops", ("id", "slug", "currency", "locale"), shops),
        "products": bulk_insert(
            engine,
            "products",
            ("id", "shop_id", "name", "locale", "price_minor", "currency"),
            _products(),
        ),
        "reviews": bulk_insert(
            engine, "reviews", ("id", "product_id", "shop_id", "rating"), _reviews()
        ),
    }
    _mark(engine)
    return counts


_STREETS = ("Maple", "Oak", "Harbour", "Station", "Mill", "Church", "Bridge", "Victoria")
_CITIES = ("Springfield", "Rivertown", "Lakeside", "Hillcrest", "Brookfield", "Fairview")


def _address(rng: random.Random) -> str:
    street = f"{rng.randint(1, 999)} {rng.choice(_STREETS)} Street, Flat {rng.randint(1, 80)}"
    return f"{street}, {rng.choice(_CITIES)} {rng.randint(10000, 99999)}, deliver 9 to 5"


# How a shop's ordinary orders spread over its customers (Zipf, rank 0 the most): loyal
# customers have a few hundred orders, most a handful (acme's median 8, its most 321). A
# steeper draw (a Pareto of 1.1 until 2026-12-07) gave each shop's first customer half its
# orders, acme-c00000 22,000: five times the reseller's history, so under the heavy-user
# fault it, not the reseller, was the heaviest user.
ORDER_CUSTOMER_EXPONENT = 0.5


def _orders(now: int) -> Iterator[tuple[tuple, list[tuple]]]:
    """Orders with their items; resellers first, then everyone else, Zipf by shop and customer."""
    rng = random.Random(13)
    shops = dataset.shops()
    by_weight = _cumulative_shop_weights()
    numbers = {s.slug: 0 for s in shops}
    item_id = 0
    resellers = [(dataset.shop(slug), number) for slug, number in dataset.RESELLERS]
    plan = [entry for entry in resellers for _ in range(dataset.ORDERS_PER_RESELLER)]
    plan += [None] * (dataset.ORDER_COUNT - len(plan))
    for order_id, entry in enumerate(plan, 1):
        if entry is None:
            shop = rng.choices(shops, cum_weights=by_weight)[0]
            number = zipf_rank(rng, shop.customer_count, ORDER_CUSTOMER_EXPONENT)
        else:
            shop, number = entry
        numbers[shop.slug] += 1
        items = []
        total = 0
        for _ in range(rng.choice((1, 2))):
            item_id += 1
            product = shop.first_product_id + rng.randrange(shop.product_count)
            quantity = rng.randint(1, 3)
            price = rng.randint(300, 20_000)
            total += price * quantity
            items.append((item_id, order_id, product, quantity, price))
        created = now - rng.randrange(90 * DAY)
        order = (
            order_id,
            shop.slug,
            shop.customer(number),
            numbers[shop.slug],
            created,
            total,
            shop.currency,
            "paid",
            _address(rng),
        )
        yield order, items


def seed_orders(engine: Engine, now: int | None = None) -> dict[str, int]:
    metadata = order_models.Base.metadata
    _reset(engine, metadata)
    now = int(time.time()) if now is None else now
    orders: list[tuple] = []
    items: list[tuple] = []
    for order, its in _orders(now):
        orders.append(order)
        items.extend(its)
    last = {}
    for order in orders:
        last[order[1]] = order[3]
    counts = {
        "orders": bulk_insert(
            engine,
            "orders",
            (
                "id",
                "shop",
                "customer",
                "number",
                "created_at",
                "total_minor",
                "currency",
                "status",
                "shipping_address",
            ),
            orders,
        ),
        "order_items": bulk_insert(
            engine,
            "order_items",
            ("id", "order_id", "product_id", "quantity", "price_minor"),
            items,
        ),
        "shop_counters": bulk_insert(
            engine,
            "shop_counters",
            ("shop", "next_number", "invoiced_through"),
            [(s.slug, last.get(s.slug, 0) + 1, 0) for s in dataset.shops()],
        ),
    }
    _mark(engine)
    return counts


SEEDERS = {catalog_models.SCHEMA: seed_catalog, order_models.SCHEMA: seed_orders}


def seed(
    data_dir: Path, database_url: str | None = None, *, force: bool = False
) -> dict[str, dict]:
    """Seed every schema that is not seeded yet (or all of them with `force`)."""
    report: dict[str, dict] = {}
    for schema, seeder in SEEDERS.items():
        engine = db.make_engine(schema, data_dir, database_url)
        try:
            db.ensure_schema(engine, schema)
            if force or not _seeded(engine):
                started = time.perf_counter()
                counts = seeder(engine)
                report[schema] = {**counts, "seconds": round(time.perf_counter() - started, 2)}
            else:
                report[schema] = {"already seeded": True}
        finally:
            engine.dispose()
    return report


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(prog="python -m sample_app.seed", description=__doc__)
    parser.add_argument(
        "--data-dir", default=os.environ.get("SAMPLE_APP_DATA_DIR", ".o11ykit/sample-app")
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL"), type=db.database_url_option
    )
    parser.add_argument("--force", action="store_true", help="seed again even if seeded")
    args = parser.parse_args(argv)
    for schema, result in seed(Path(args.data_dir), args.database_url, force=args.force).items():
        print(f"{schema}: {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
