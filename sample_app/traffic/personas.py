"""What each kind of visitor does: the requests of one visit, drawn from a random source.

A persona's steps depend only on the random source and the shop, never on a response, so
a visit is fully known before it starts: the same seed gives the same requests whatever the
gateway answers, and tests can compare what a gateway received with `plan()`.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from typing import Any

from sample_app.dataset import Shop
from sample_app.traffic.vocabulary import ADJECTIVES, SEARCH_WORDS

# Product popularity inside a shop: a few best sellers, a long tail of rarely viewed items.
PRODUCT_EXPONENT = 0.8
ORDERS_LIMIT = 20
SEARCH_LIMIT = 20
# Every shopper pays with the same good card: a 402 is one of payments' own ~3% declines
# (DECLINE_SHARE, drawn per charge as a real provider declines), never a shopper's choice.
CARD = "tok_visa"


@dataclass(frozen=True)
class Step:
    """One request: `route` is the path template, for grouping (journal, summary)."""

    method: str
    path: str
    route: str
    params: tuple[tuple[str, str], ...] = ()
    body: Mapping[str, Any] | None = None


def product_page(product_id: int) -> Step:
    return Step("GET", f"/api/products/{product_id}", "/api/products/{id}")


def search(word: str, locale: str) -> Step:
    params = (("q", word), ("locale", locale), ("limit", str(SEARCH_LIMIT)))
    return Step("GET", "/api/products", "/api/products", params)


def quote(items: list[dict[str, int]]) -> Step:
    return Step("POST", "/api/cart/quote", "/api/cart/quote", body={"items": items})


def checkout(items: list[dict[str, int]]) -> Step:
    return Step("POST", "/api/checkout", "/api/checkout", body={"items": items, "card": CARD})


def order_history() -> Step:
    return Step("GET", "/api/orders", "/api/orders", (("limit", str(ORDERS_LIMIT)),))


def sales_report(days: int) -> Step:
    return Step("GET", "/api/staff/sales", "/api/staff/sales", (("days", str(days)),))


@cache
def _cumulative_zipf(count: int, exponent: float) -> tuple[float, ...]:
    return tuple(accumulate(1.0 / rank**exponent for rank in range(1, count + 1)))


def zipf_rank(rng: random.Random, count: int, exponent: float) -> int:
    """A 0-based rank among `count`, rank 0 the most likely: heavy head, long tail."""
    cumulative = _cumulative_zipf(count, exponent)
    return min(bisect_left(cumulative, rng.random() * cumulative[-1]), count - 1)


def _products(rng: random.Random, shop: Shop, count: int) -> list[int]:
    ids = shop.product_ids
    return [ids[zipf_rank(rng, len(ids), PRODUCT_EXPONENT)] for _ in range(count)]


def _cart(rng: random.Random, product_ids: list[int]) -> list[dict[str, int]]:
    distinct = dict.fromkeys(product_ids)  # keeps the order they were viewed in
    return [{"product_id": pid, "quantity": rng.randint(1, 3)} for pid in distinct]


def _query(rng: random.Random) -> str:
    word = rng.choice(SEARCH_WORDS)
    # Some shoppers type what kind they want too, which narrows the search.
    return f"{rng.choice(ADJECTIVES)} {word}" if rng.random() < 0.3 else word


def browse(rng: random.Random, shop: Shop) -> list[Step]:
    # A returning customer sometimes starts from their order history.
    steps = [order_history()] if rng.random() < 0.25 else []
    return steps + [product_page(pid) for pid in _products(rng, shop, rng.randint(2, 4))]


def searching(rng: random.Random, shop: Shop) -> list[Step]:
    steps = [search(_query(rng), shop.locale) for _ in range(rng.randint(1, 2))]
    return [*steps, *(product_page(pid) for pid in _products(rng, shop, 1))]


def cart(rng: random.Random, shop: Shop) -> list[Step]:
    viewed = _products(rng, shop, rng.randint(1, 3))
    return [*(product_page(pid) for pid in viewed), quote(_cart(rng, viewed))]


def buying(rng: random.Random, shop: Shop) -> list[Step]:
    viewed = _products(rng, shop, rng.randint(1, 2))
    items = _cart(rng, viewed)
    # The confirmation page links to the order history, and most buyers follow it.
    pages = [product_page(pid) for pid in viewed]
    return [*pages, quote(items), checkout(items), order_history()]


def staff(rng: random.Random, shop: Shop) -> list[Step]:
    return [sales_report(rng.choice((7, 30, 30, 30, 90)))]


PERSONAS: dict[str, Callable[[random.Random, Shop], list[Step]]] = {
    "browse": browse,
    "search": searching,
    "cart": cart,
    "checkout": buying,
    "staff": staff,
}
# Most visitors look around, fewer buy, and the shop's own staff are a handful.
DEFAULT_MIX: dict[str, float] = {
    "browse": 40.0,
    "search": 32.0,
    "cart": 15.0,
    "checkout": 10.0,
    "staff": 3.0,
}
STAFF_PERSONAS = frozenset({"staff"})  # their X-User-ID is the shop's staff id
