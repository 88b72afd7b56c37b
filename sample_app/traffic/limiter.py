"""One token bucket shared by every concurrent visit, so the rate holds for the whole run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

# The bucket holds this much of the rate (at least one token): enough to make up for a late
# wake-up of the event loop, too little for a visible burst.
BURST_S = 0.05


class TokenBucket:
    """`rate` tokens a second; `acquire()` waits for one. Waiters are served in order."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate * BURST_S)
        self._clock = clock
        # Starts with a single token, not a full bucket: no burst at the start of a run.
        self._tokens = 1.0
        self._updated = clock()
        self._lock = asyncio.Lock()  # FIFO, so no visit starves behind the others

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now

    async def acquire(self) -> None:
        async with self._lock:
            self._refill()
            while self._tokens < 1.0:
                await asyncio.sleep((1.0 - self._tokens) / self._rate)
                self._refill()
            self._tokens -= 1.0
