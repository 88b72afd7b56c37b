"""Per-shop rating tables, cached: computing one reads every review of the shop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, text

TTL_S = 60.0
_RATINGS_SQL = text(
    "SELECT product_id, AVG(rating), COUNT(*) FROM reviews WHERE shop_id = :shop "
    "GROUP BY product_id"
)
Ratings = dict[int, tuple[float, int]]


def compute(engine: Engine, shop_id: int) -> Ratings:
    with engine.connect() as connection:
        rows = connection.execute(_RATINGS_SQL, {"shop": shop_id}).all()
    return {product: (round(float(avg), 2), count) for product, avg, count in rows}


class RatingsCache:
    """TTL cache with one computation per shop at a time, so an expiry is not a stampede."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine
        self._clock = clock
        self._entries: dict[int, tuple[float, Ratings]] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, shop_id: int, ttl_s: float = TTL_S) -> Ratings:
        if ttl_s <= 0:
            # What a TTL of 0 does: every caller computes, all at once.
            return compute(self._engine, shop_id)
        entry = self._entries.get(shop_id)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        with self._guard:
            lock = self._locks.setdefault(shop_id, threading.Lock())
        with lock:
            entry = self._entries.get(shop_id)
            if entry is not None and entry[0] > self._clock():
                return entry[1]
            ratings = compute(self._engine, shop_id)
            self._entries[shop_id] = (self._clock() + ttl_s, ratings)
            return ratings
