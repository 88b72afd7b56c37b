"""The one thread that writes the database; receivers log their batches, queue them and go.

A receiver's request is acknowledged once it is in the ingest log (`ingest_log.py`), so
the writer can take every batch waiting and commit them together: at 512 spans a commit,
a commit cost as much as the spans' rows and indexes together. The queue is bounded: a
receiver waits for room (the exporter sees a slow answer, which is back-pressure), and
after QUEUE_WAIT_SECONDS answers 503, which exporters retry later, rather than
memory growing without bound.

Readers that must see what was acknowledged before they asked (the query server) call
`wait_written` first.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable

from o11ykit.store.batches import Batch, batch_from_request
from o11ykit.store.checkpoints import BACKSTOP_BYTES, Checkpointer
from o11ykit.store.decode import IngestError, parse_protobuf
from o11ykit.store.ingest import Store
from o11ykit.store.ingest_log import IngestLog, LogPosition
from o11ykit.store.schema import wal_autocheckpoint

QUEUE_BATCHES = 16
# Batches waiting together are written in one transaction, up to this many spans: a group
# stays small enough that a query waiting for it is not kept long. The attribute index's
# blocks (schema.ATTRIBUTE_BLOCK_SHIFT) are this size, so a group writes into one or two.
GROUP_SPANS = 4096
# How long a receiver waits for room in the queue before answering 503. Well under the
# 10 s that exporters wait for an answer by default (Python, Go, Java, JS): a 503 after
# they gave up would be lost, and a batch logged after it would come again in their retry.
QUEUE_WAIT_SECONDS = 5.0
# How often an idle writer evicts spans past the store's maximum age (when it has one).
IDLE_EXPIRY_SECONDS = 5.0
# While the database refuses writes, the writer tries again after this, doubling to the most.
RETRY_FIRST_SECONDS = 0.1
RETRY_MAX_SECONDS = 5.0

log = logging.getLogger("o11ykit.store")


class StoreBusy(Exception):
    """The writer's queue stayed full (or the store is stopping): try again later."""


class Writer:
    """The only thread that writes the database; receivers hand it logged batches."""

    def __init__(self, store: Store, capacity: int = QUEUE_BATCHES) -> None:
        self.store = store
        self.capacity = capacity
        self._log = IngestLog(store.directory, newer_than=store.log_position.segment)
        self._changed = threading.Condition()
        self._queue: deque[tuple[Batch, LogPosition]] = deque()
        # Batches accepted and batches written (or given up on), counted since start.
        self._accepted = 0
        self._written = 0
        self._stopping = False
        self._failures = 0
        self._replay()
        wal_autocheckpoint(store.connection, BACKSTOP_BYTES)
        self._checkpoints = Checkpointer(store.directory)
        self._thread = threading.Thread(target=self._run, name="o11ykit-store-writer", daemon=True)
        self._thread.start()

    def submit(
        self, batch: Batch, payload: Callable[[], bytes], timeout: float | None = None
    ) -> int:
        """Log and queue `batch`; returns its span count once it is safe in the log.

        `payload` gives the request as protobuf bytes, called only once there is room.
        StoreBusy if the queue stays full for `timeout` seconds or the store is stopping.
        """
        wait = QUEUE_WAIT_SECONDS if timeout is None else timeout
        with self._changed:
            if not self._changed.wait_for(self._has_room, wait) or self._stopping:
                raise StoreBusy(
                    "the store is stopping" if self._stopping else "the store's write queue is full"
                )
            # Logged and queued under one lock, so the queue is in log order.
            try:
                position = self._log.append(payload())
            except OSError as exc:  # a full disk: the exporter may try again later
                raise StoreBusy(f"the store cannot write its ingest log: {exc}") from None
            self._queue.append((batch, position))
            self._accepted += 1
            self._changed.notify_all()
        return len(batch.spans)

    def wait_written(self, timeout: float) -> bool:
        """Wait until every batch accepted before this call is in the database."""
        with self._changed:
            target = self._accepted
            return self._changed.wait_for(lambda: self._written >= target, timeout)

    def stop(self) -> None:
        """Write what is queued, then close the database and the log."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join()
        self._checkpoints.stop()
        self._log.close()
        self.store.close()

    def _has_room(self) -> bool:
        return self._stopping or len(self._queue) < self.capacity

    def _run(self) -> None:
        idle_wake = None if self.store.max_age_seconds is None else IDLE_EXPIRY_SECONDS
        while True:
            with self._changed:
                if not self._changed.wait_for(lambda: self._queue or self._stopping, idle_wake):
                    group = None  # idle: nothing arrives, yet old spans must still go
                elif not self._queue:
                    return  # stopping, and nothing left to write
                else:
                    group = self._take_group()
            if group is None:
                self._expire()
                continue
            if not self._write(group):
                return  # stopping while the database refuses writes: the log keeps the rest
            self._checkpoints.committed()
            with self._changed:
                self._written += len(group)
                self._changed.notify_all()
            try:
                self._log.discard_before(group[-1][1].segment)
            except OSError as exc:  # a segment another program holds open: deleted later
                log.warning(
                    "o11ykit store: could not delete an applied ingest log segment: %s", exc
                )

    def _take_group(self) -> list[tuple[Batch, LogPosition]]:
        """The batches waiting, up to GROUP_SPANS; call with the lock held."""
        group = [self._queue.popleft()]
        spans = len(group[0][0].spans)
        # Take whatever else is already waiting, without waiting for more.
        while self._queue and spans < GROUP_SPANS:
            group.append(self._queue.popleft())
            spans += len(group[-1][0].spans)
        self._changed.notify_all()  # room in the queue
        return group

    def _expire(self) -> None:
        try:
            self.store.evict_expired()
        except Exception:  # a failing database: the next write will say so
            log.debug("could not evict expired spans", exc_info=True)

    def _write(self, group: list[tuple[Batch, LogPosition]]) -> bool:
        """Write the group, or drop the batches the database refuses for themselves.

        Every batch here was acknowledged. When the database refuses any write (another
        program holds its lock, a full disk, an I/O error: sqlite3.OperationalError), the
        writer waits it out, retrying, while the queue fills and receivers answer 503, which
        exporters retry. False if the store stops first: what is not written stays in the
        ingest log, past the position the database records, and the next start applies it.
        """
        pending = list(group)
        delay = RETRY_FIRST_SECONDS
        refused = False
        while pending:
            try:
                self._write_or_drop(pending)
            # OperationalError, or a failure to record a dropped batch: never skip past it.
            except Exception as exc:
                if not refused:
                    refused = True
                    log.error(
                        "o11ykit store: the database refuses writes (%s); retrying, and the"
                        " batches wait in the ingest log meanwhile",
                        exc,
                    )
                with self._changed:
                    if self._changed.wait_for(lambda: self._stopping, delay):
                        return False
                delay = min(2 * delay, RETRY_MAX_SECONDS)
        if refused:
            log.warning("o11ykit store: the database takes writes again")
        return True

    def _write_or_drop(self, pending: list[tuple[Batch, LogPosition]]) -> None:
        """Write the pending batches together, else one by one, removing each from `pending`
        once written or dropped; sqlite3.OperationalError leaves the rest in it."""
        try:
            self.store.write_group([batch for batch, _ in pending], pending[-1][1])
            pending.clear()
            return
        except sqlite3.OperationalError:
            raise
        except Exception as exc:
            if len(pending) == 1:
                self._give_up(pending[0], exc)
                pending.clear()
                return
        # One batch must not cost the others.
        while pending:
            try:
                self.store.write_group([pending[0][0]], pending[0][1])
            except sqlite3.OperationalError:
                raise
            except Exception as exc:
                self._give_up(pending[0], exc)
            pending.pop(0)

    def _give_up(self, item: tuple[Batch, LogPosition], exc: Exception) -> None:
        """A batch the database refuses for itself (validated, yet refused: a bug) is
        counted, said once, and skipped past. Recording it can meet a database that
        refuses writes (sqlite3.OperationalError): then it is retried with the others."""
        batch, position = item
        self._failures += 1
        if self._failures == 1:
            log.error(
                "o11ykit store: could not write a batch of %d spans (%s: %s); it is dropped, "
                "and later failures are counted in meta.dropped_spans without a message",
                len(batch.spans),
                type(exc).__name__,
                exc,
            )
        self.store.skip(len(batch.spans), position)

    def _replay(self) -> None:
        """Write what the log holds beyond the last commit: a store killed mid-ingest.

        As in normal running, a batch the database refuses for itself is dropped and
        counted rather than written again at every start; a database that refuses every
        write (sqlite3.OperationalError) fails the start, and the log keeps it all.
        """
        pending: list[tuple[Batch, LogPosition]] = []
        spans = 0
        last: LogPosition | None = None
        for payload, position in self._log.replay(self.store.log_position):
            last = position
            try:
                batch = batch_from_request(
                    parse_protobuf(payload), indexed_keys=self.store.indexed_keys
                )
            except IngestError as exc:  # it was checked before it was logged: a damaged log
                log.error("o11ykit store: skipped a damaged ingest log record: %s", exc.message)
                continue
            pending.append((batch, position))
            spans += len(batch.spans)
            if spans >= GROUP_SPANS:
                self._write_or_drop(pending)
                spans = 0
        if pending:
            self._write_or_drop(pending)
        if last is not None:
            # Past any damaged records at the end too, so they are not read again.
            self.store.write_group([], last)
            log.info("o11ykit store: wrote the batches the ingest log held past the last commit")
        self._log.discard_before(self._log.current_segment)
