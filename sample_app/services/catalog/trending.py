"""'Trending in this shop': the most viewed products among the recent views."""

from __future__ import annotations

import threading
from array import array
from collections import Counter

KEEP = 1_000
# A safety net so an unbounded buffer degrades the service for minutes (each request
# counting up to ten million entries) instead of exhausting memory: 4 bytes an entry.
HARD_CAP = 10_000_000


class RecentViews:
    def __init__(self) -> None:
        self._views = array("I")
        self._lock = threading.Lock()

    def record(self, product_id: int, *, extra: int = 0, bounded: bool = True) -> None:
        with self._lock:
            self._views.append(product_id)
            if extra:
                # The bug's source: the buffer also logs each related-product impression.
                self._views.extend(range(product_id, product_id + extra))
            limit = KEEP if bounded else HARD_CAP
            if len(self._views) > limit:
                del self._views[: len(self._views) - limit]

    def trending(self, count: int = 5) -> list[int]:
        with self._lock:
            counts = Counter(self._views)
        return [product for product, _ in counts.most_common(count)]

    def __len__(self) -> int:
        return len(self._views)
