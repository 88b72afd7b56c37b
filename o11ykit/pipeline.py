"""From ended span to the wire: a bounded queue, one background thread, one send per batch.

The request's thread only appends to a bounded queue; everything else (scrubbing,
encoding, sending) happens on the export thread. A full queue or a failing backend costs
the service its telemetry, never its latency, and is counted and reported once a minute.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from o11ykit.privacy import Scrubber
from o11ykit.transport import ExportFailure, Transport

log = logging.getLogger("o11ykit")
WARN_INTERVAL_SECONDS = 60.0


@dataclass
class ExportStats:
    exported: int = 0
    dropped_queue_full: int = 0
    dropped_export_failed: int = 0
    failed_batches: int = 0
    last_error: str | None = None

    @property
    def dropped(self) -> int:
        return self.dropped_queue_full + self.dropped_export_failed

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "dropped": self.dropped}


class OncePerInterval:
    """Logs a warning at most once per interval, saying how many were held back."""

    def __init__(self, interval: float = WARN_INTERVAL_SECONDS) -> None:
        self._interval = interval
        self._last = float("-inf")
        self._suppressed = 0
        self._lock = threading.Lock()

    def warn(self, message: str, *args: object) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self._interval:
                self._suppressed += 1
                return False
            held, self._suppressed, self._last = self._suppressed, 0, now
        suffix = f" ({held} similar messages held back)" if held else ""
        log.warning(message + suffix, *args)
        return True


class SafeSpanExporter(SpanExporter):
    """Scrubs, encodes and sends; never raises, never retries, never blocks past a deadline."""

    def __init__(self, transport: Transport, scrubber: Scrubber, timeout: float) -> None:
        self.transport = transport
        self.stats = ExportStats()
        self._scrubber = scrubber
        self._timeout = timeout
        self._deadline: float | None = None
        # One limiter per message: a full queue must not hide a dead backend, nor the reverse.
        self._failure_warning = OncePerInterval()
        self._recovery_note = OncePerInterval()
        self._failing = False
        self._reset_in_flight()

    def _reset_in_flight(self) -> None:
        # Taking a batch, settling it and shutdown's giving up on it happen under one lock,
        # so that a span is counted once: exported, failed, or lost at shutdown.
        self._lock = threading.Lock()
        self._in_flight = 0
        self._abandoned = False
        # Spans shutdown gave up on, which no warning has counted: one line says so at the end.
        self._lost = 0
        self._lost_waiting = 0

    def after_fork(self) -> None:
        """In a forked process: the parent's sends in flight are the parent's."""
        self._reset_in_flight()

    def set_deadline(self, deadline: float) -> None:
        self._deadline = deadline

    def _time_left(self) -> float:
        if self._deadline is None:
            return self._timeout
        return min(self._timeout, self._deadline - time.monotonic())

    def take(self, queue: collections.deque[ReadableSpan], count: int) -> list[ReadableSpan]:
        """Up to `count` spans popped off `queue` as in flight, for send_taken(); none once
        the deadline has passed or shutdown has given up (what is queued is then shutdown's
        to count)."""
        with self._lock:
            if self._abandoned or self._time_left() <= 0:
                return []
            batch = [queue.popleft() for _ in range(min(count, len(queue)))]
            self._in_flight += len(batch)
            return batch

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            if self._abandoned or self._time_left() <= 0:
                self._count_lost(len(spans), waiting=False)
                return SpanExportResult.FAILURE
            self._in_flight += len(spans)
        return self.send_taken(spans)

    def send_taken(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        count = len(spans)
        timeout = self._time_left()
        if timeout <= 0:
            with self._lock:
                if not self._abandoned:
                    self._in_flight -= count
                    self._count_lost(count, waiting=False)
            return SpanExportResult.FAILURE
        try:
            self.transport.send(spans, timeout, self._scrubber)
        except ExportFailure as failure:
            return self._failed(count, str(failure))
        except Exception as exc:  # its text may quote a span's value: scrubbed like one
            said = self._scrubber.scrub_text(f"unexpected {type(exc).__name__}: {exc}")
            return self._failed(count, said)
        with self._lock:
            if self._abandoned:  # shutdown already counted this batch as lost
                return SpanExportResult.FAILURE
            self._in_flight -= count
            self.stats.exported += count
            recovered, self._failing = self._failing, False
        if recovered:
            self._recovery_note.warn("o11ykit: export to %s works again", self.transport.target)
        return SpanExportResult.SUCCESS

    def abandon(self, queue: collections.deque[ReadableSpan]) -> None:
        """At shutdown's deadline: the spans still queued and those still being sent are lost.
        A send still running finishes in the background; its outcome is no longer counted."""
        with self._lock:
            self._abandoned = True
            waiting, self._in_flight = self._in_flight, 0
            self._count_lost(waiting, waiting=True)
        self.lose_queued(queue)

    def lose_queued(self, queue: collections.deque[ReadableSpan]) -> None:
        """Count what is queued as lost, taking each span as it is counted: a span the
        service ends meanwhile (on_end appends without the lock) is either taken and
        counted here, or left for the caller that appended it to count (on_end)."""
        with self._lock:
            lost = 0
            while queue:
                queue.popleft()
                lost += 1
            self._count_lost(lost, waiting=False)

    def _count_lost(self, count: int, waiting: bool) -> None:
        self.stats.dropped_export_failed += count
        self._lost += count
        if waiting:
            self._lost_waiting += count

    def report_loss(self, timeout: float) -> None:
        """One line at the end for the spans shutdown gave up on: no warning has told anyone,
        and a backend that never answers fails no export before the process ends."""
        with self._lock:
            lost, waiting = self._lost, self._lost_waiting
            self._lost = self._lost_waiting = 0
        if not lost:
            return
        ran_out = f"when shutdown's {timeout:g} s timeout ran out"
        if waiting:
            why = f"the export to {self.transport.target} was still waiting for an answer {ran_out}"
        else:
            why = f"they were still queued {ran_out}"
        if self.stats.last_error:
            why += f"; last error: {self.stats.last_error}"
        spans = "1 span was" if lost == 1 else f"{lost} spans were"
        log.warning("o11ykit: %s lost at shutdown: %s. The service is unaffected.", spans, why)

    def _failed(self, count: int, reason: str) -> SpanExportResult:
        with self._lock:
            if self._abandoned:  # shutdown already counted this batch as lost
                return SpanExportResult.FAILURE
            self._in_flight -= count
            self.stats.dropped_export_failed += count
            self.stats.failed_batches += 1
            self.stats.last_error = reason
            self._failing = True
            dropped = self.stats.dropped
        self._failure_warning.warn(
            "o11ykit: spans are not reaching the backend (%s); %d dropped so far. "
            "The service is unaffected. Run `o11ykit doctor` for a diagnosis.",
            reason,
            dropped,
        )
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.transport.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class BoundedBatchProcessor(SpanProcessor):
    """Queues ended spans and exports them in batches from one daemon thread.

    The thread starts on the first span, in whichever process ends it: a forked worker
    gets its own queue and thread without any at-fork hook in the parent.
    """

    def __init__(
        self,
        exporter: SafeSpanExporter,
        max_queue_size: int = 2048,
        max_batch_size: int = 512,
        schedule_delay: float = 1.0,
        exit_timeout: float = 1.0,
    ) -> None:
        self.exporter = exporter
        self.exit_timeout = exit_timeout
        self._queue_warning = OncePerInterval()
        self._max_queue = max_queue_size
        self._batch = max_batch_size
        self._delay = schedule_delay
        self._pid: int | None = None
        self._closed = False
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._thread: threading.Thread | None = None

    def on_start(self, span: object, parent_context: object = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self._closed or not span.context.trace_flags.sampled:
            return
        if self._pid != os.getpid():
            self._start_in_this_process()
        if len(self._queue) >= self._max_queue:
            stats = self.exporter.stats
            stats.dropped_queue_full += 1
            self._queue_warning.warn(
                "o11ykit: the export queue is full (max_queue_size=%d): spans are dropped "
                "until it drains; %d dropped so far. The service is unaffected.",
                self._max_queue,
                stats.dropped,
            )
            return
        self._queue.append(span)
        if self._closed:  # shutdown ran between the check above and the append: count it
            self.exporter.lose_queued(self._queue)
        elif len(self._queue) >= self._batch:
            self._wake.set()

    def _start_in_this_process(self) -> None:
        if self._pid is not None:
            self.exporter.after_fork()
        self._pid = os.getpid()
        self._queue = collections.deque()  # a parent's pending spans are the parent's to send
        self._wake = threading.Event()
        self._idle = threading.Event()
        thread = threading.Thread(target=self._run, name="o11ykit-export", daemon=True)
        try:
            thread.start()
            self._thread = thread
        except RuntimeError:
            # A first span ended during interpreter shutdown, where Python 3.12.0-3.12.2
            # start no thread: it waits in the queue, and shutdown sends it itself.
            self._thread = None
        multiprocessing = sys.modules.get("multiprocessing")
        if multiprocessing is not None and multiprocessing.parent_process() is not None:
            _flush_at_multiprocessing_exit(self)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._delay)
            self._wake.clear()
            self._drain()
            self._idle.set()
            if self._closed:
                return

    def _drain(self) -> None:
        while self._queue:
            batch = self.exporter.take(self._queue, self._batch)
            if not batch:
                return
            self.exporter.send_taken(batch)

    def force_flush(self, timeout_millis: int = 1000) -> bool:
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            return not self._queue
        self._idle.clear()
        self._wake.set()
        return self._idle.wait(timeout_millis / 1000.0) and not self._queue

    def shutdown(self, timeout: float = 1.0) -> None:
        """Flush what is queued within `timeout` seconds, then stop: what is left, and a send
        still waiting for its answer, are counted as lost and reported in one line."""
        if self._closed:
            return
        if self._pid != os.getpid():  # no span ended in this process: nothing of ours queued
            self._closed = True
            self.exporter.shutdown()
            return
        self.exporter.set_deadline(time.monotonic() + timeout)
        if self._thread is None:  # none could start (above): send here, by the deadline
            self._drain()
        self.force_flush(int(timeout * 1000))
        self._closed = True
        self.exporter.abandon(self._queue)
        self._wake.set()
        # Returns at once even while a send is in flight: the transport cuts its socket
        # and leaves the closing to the export thread.
        self.exporter.shutdown()
        self.exporter.report_loss(timeout)


def _flush_at_multiprocessing_exit(processor: BoundedBatchProcessor) -> None:
    # multiprocessing children end with os._exit(), which skips atexit; its own finalizer
    # registry is the hook that does run there.
    from multiprocessing import util

    util.Finalize(None, processor.shutdown, args=(processor.exit_timeout,), exitpriority=100)
