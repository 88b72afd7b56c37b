"""The catalog's search condition on SQLite and on Postgres: the same products for the same
words, whatever their case, with `%`, `_` and the escape character taken as typed.

On Postgres the table lives in a schema of its own, dropped afterwards: the database may be
the one a running stack or the contract tests use.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, insert, select, text

from sample_app import db
from sample_app.services.catalog import models
from tests.support.sample_stack import postgres_unavailable, postgres_url

NAMES = {
    1: "Classic Kettle 1",
    2: "modern kettle 2",
    3: "100% cotton towel 3",
    4: "desk_lamp 4",
    5: "desk lamp 5",
    6: "50/50 mug 6",
    7: "plain mug 7",
}


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path) -> Iterator[Engine]:
    if request.param == "sqlite":
        schema, url = "catalog", None
    else:
        reason = postgres_unavailable()
        if reason:
            pytest.skip(f"the Postgres search test did not run: {reason}")
        schema, url = f"search_test_{secrets.token_hex(4)}", postgres_url()
    engine = db.make_engine(schema, tmp_path, url)
    db.ensure_schema(engine, schema)
    try:
        models.Base.metadata.create_all(
            engine, tables=[models.Shop.__table__, models.Product.__table__]
        )
        with engine.begin() as connection:
            connection.execute(
                insert(models.Shop),
                [{"id": 1, "slug": "acme", "currency": "USD", "locale": "en-US"}],
            )
            connection.execute(
                insert(models.Product),
                [
                    {"id": i, "shop_id": 1, "name": name, "locale": "en-US", "price_minor": 100}
                    for i, name in NAMES.items()
                ],
            )
        yield engine
    finally:
        if url is not None:
            with engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def found(engine: Engine, words: str) -> list[int]:
    statement = (
        select(models.Product.id).where(models.name_contains(words)).order_by(models.Product.id)
    )
    with engine.connect() as connection:
        return list(connection.scalars(statement))


@pytest.mark.parametrize(
    ("words", "ids"),
    [
        ("kettle", [1, 2]),
        ("KETTLE", [1, 2]),
        ("Modern Kettle", [2]),
        ("100%", [3]),
        ("%", [3]),  # a percent sign a shopper typed, not "anything"
        ("desk_", [4]),  # nor is an underscore "any one character"
        ("50/50", [6]),  # the escape character itself
        ("", list(NAMES)),
    ],
)
def test_search_matches_the_same_products_on_both_databases(
    engine: Engine, words: str, ids: list[int]
) -> None:
    assert found(engine, words) == ids
