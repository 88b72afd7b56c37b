"""pool_hold: a real connection leak on a real SQLAlchemy pool.

Each matching request checks connections out of the service's own engine, as leaking code
would, and a single background thread gives them back when their time is up. While held,
the service's other requests wait for the pool exactly as they would in production, and
fail with the pool's own timeout. Clearing (or fixing) the fault gives everything back at
once, like the restart that ships a fix.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("o11ykit")


class PoolHolder:
    def __init__(self, sqlalchemy_engine: Any) -> None:
        self.sqlalchemy_engine = sqlalchemy_engine
        self._changed = threading.Condition()
        # (deadline, order, fault id, connection); order keeps equal deadlines comparable.
        self._due: list[tuple[float, int, str, Any]] = []
        self._order = itertools.count()
        # Bumped by release(): a checkout that finishes after its fault was cleared gives
        # its connections straight back instead of keeping them.
        self._generation: dict[str, int] = {}
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> int:
        with self._changed:
            return len(self._due)

    def hold(self, fault_id: str, connections: int, hold_s: float) -> None:
        """Check out `connections` connections and keep them `hold_s` seconds.

        Blocking, like any checkout: call it off the event loop. When the pool is exhausted
        the pool's TimeoutError propagates to the request, as it would for the leaking code.
        """
        with self._changed:
            generation = self._generation.get(fault_id, 0)
        taken: list[Any] = []
        try:
            for _ in range(connections):
                taken.append(self.sqlalchemy_engine.raw_connection())
        finally:
            self._keep(fault_id, generation, taken, hold_s)

    def _keep(self, fault_id: str, generation: int, taken: list[Any], hold_s: float) -> None:
        if not taken:
            return
        deadline = time.monotonic() + hold_s
        with self._changed:
            if self._generation.get(fault_id, 0) == generation:
                for connection in taken:
                    heapq.heappush(self._due, (deadline, next(self._order), fault_id, connection))
                taken = []
                self._ensure_thread()
                self._changed.notify()
        _give_back(taken)

    def release(self, fault_ids: Iterable[str] | None = None) -> int:
        """Give back what the faults hold (all, for None) now; returns how many."""
        with self._changed:
            wanted = None if fault_ids is None else set(fault_ids)
            for fault_id in wanted if wanted is not None else {d[2] for d in self._due}:
                self._generation[fault_id] = self._generation.get(fault_id, 0) + 1
            released = [d for d in self._due if wanted is None or d[2] in wanted]
            self._due = [d for d in self._due if not (wanted is None or d[2] in wanted)]
            heapq.heapify(self._due)
        _give_back([d[3] for d in released])
        return len(released)

    def on_change(self, action: str, fault_ids: list[str]) -> None:
        """The engine's listener: a cleared or fixed leak gives its connections back."""
        if action in ("clear", "fix"):
            self.release(fault_ids)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="o11ykit-pool", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._due:
                    self._changed.wait()
                wait = self._due[0][0] - time.monotonic()
                if wait > 0:
                    self._changed.wait(wait)
                    continue
                due = [heapq.heappop(self._due)[3]]
                now = time.monotonic()
                while self._due and self._due[0][0] <= now:
                    due.append(heapq.heappop(self._due)[3])
            _give_back(due)


def _give_back(connections: list[Any]) -> None:
    for connection in connections:
        try:
            connection.close()
        except Exception as exc:  # a broken connection must not stop the others returning
            log.debug("o11ykit: returning a held connection failed: %s", exc)
