"""The one thread that writes the database; receivers hand it batches and wait.

A full queue is an error the receivers answer with 503, which exporters count as a failed
batch, rather than memory growing without bound.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

from o11ykit.store.ingest import (
    Batch,
    Store,
)

QUEUE_BATCHES = 64
# How long a receiver waits for its batch to be committed before answering 503.
COMMIT_TIMEOUT = 30.0


class StoreBusy(Exception):
    """The writer's queue is full (or the store is stopping): try again later."""


class Writer:
    """The only thread that writes the database; everyone else submits batches to it."""

    def __init__(self, store: Store, capacity: int = QUEUE_BATCHES) -> None:
        self.store = store
        self._queue: queue.Queue[tuple[Batch, Future[int]] | None] = queue.Queue(capacity)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="o11ykit-store-writer", daemon=True)
        self._thread.start()

    def submit(self, batch: Batch, timeout: float = COMMIT_TIMEOUT) -> int:
        """Write `batch`, waiting for the commit; StoreBusy if it cannot be queued."""
        if self._stopping:
            raise StoreBusy("the store is stopping")
        future: Future[int] = Future()
        try:
            self._queue.put_nowait((batch, future))
        except queue.Full:
            raise StoreBusy("the store's write queue is full") from None
        return future.result(timeout)

    def stop(self) -> None:
        """Write what is queued, then close the database."""
        self._stopping = True
        self._queue.put(None)
        self._thread.join()
        self.store.close()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            batch, future = item
            try:
                future.set_result(self.store.write(batch))
            except Exception as exc:  # handed to the waiting receiver, which answers 5xx
                future.set_exception(exc)
