"""shutdown(timeout) returns within its timeout against a backend that holds the export up,
and says in one line what it lost.

Real sockets on 127.0.0.1 (tests/support/slow_peers.py); the end-of-process case runs a real
interpreter that exits without calling shutdown itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider

from o11ykit.pipeline import BoundedBatchProcessor, SafeSpanExporter
from o11ykit.privacy import Scrubber
from o11ykit.transport import ExportFailure, HttpTransport
from tests.support.processes import REPO, child_environment
from tests.support.slow_peers import silent_peer, trickling_http_peer

# serial: shutdowns must end within fixed times.
pytestmark = [pytest.mark.integration, pytest.mark.serial]

LOST_LINE = "300 spans were lost at shutdown"


def _join(thread: threading.Thread, timeout: float) -> float:
    started = time.monotonic()
    thread.join(timeout)
    return time.monotonic() - started


def test_closing_the_transport_while_it_reads_a_trickled_answer_returns_at_once() -> None:
    failures: list[ExportFailure] = []

    with trickling_http_peer(byte_interval=0.2) as peer:
        transport = HttpTransport(peer.traces_url, {})

        def send() -> None:
            try:
                transport.post(b"", timeout=30.0)
            except ExportFailure as failure:
                failures.append(failure)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        assert peer.answering.wait(5.0)
        time.sleep(0.2)  # the sender has the headers and is reading the endless body
        closer = threading.Thread(target=transport.close, daemon=True)
        closer.start()
        close_took = _join(closer, 2.0)
        send_took = _join(sender, 2.0)
    # Leaving the peer ended its answers: both threads are done by now, fixed or not.
    closer.join(5.0)
    sender.join(5.0)

    # Until 2026-12-07 close() waited for the reader, which waited for the whole body: both
    # ran into the 2 s joins. Half that leaves a loaded 2-core CI machine its margin.
    assert close_took < 1.0, close_took
    assert send_took < 1.0, send_took
    assert [failure.kind for failure in failures] == ["cancelled"], failures


def test_shutdown_keeps_its_timeout_while_the_backend_trickles_its_answer() -> None:
    with trickling_http_peer(byte_interval=0.2) as peer:
        exporter = SafeSpanExporter(HttpTransport(peer.traces_url, {}), Scrubber(), 30.0)
        processor = BoundedBatchProcessor(exporter, schedule_delay=0.05)
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(processor)
        with provider.get_tracer("test").start_as_current_span("slow"):
            pass
        assert peer.answering.wait(5.0)
        stopping = threading.Thread(target=processor.shutdown, args=(0.5,), daemon=True)
        started = time.monotonic()
        stopping.start()
        stopping.join(3.0)
        took = time.monotonic() - started
    stopping.join(5.0)

    # Measured 48.6 s for shutdown(timeout=1.0) until 2026-12-07.
    assert took < 2.0, took  # shutdown(0.5); the join gives up at 3 s, as it did before the fix
    assert exporter.stats.exported == 0
    assert exporter.stats.dropped_export_failed == 1, exporter.stats


_EXITING_SERVICE = """
import atexit, json, sys, time

# Registered before init(): atexit runs hooks last-in first-out, so this one runs after
# o11ykit's own exit flush and measures how long it took.
ended = []
atexit.register(lambda: print(json.dumps({"exit_flush": time.monotonic() - ended[0]})))

import o11ykit

handle = o11ykit.init(
    service_name="lost-at-exit",
    backend="otlp",
    endpoint=sys.argv[1],
    protocol=sys.argv[2],
    schedule_delay=0.05,
    shutdown_timeout=0.5,
)
tracer = handle.tracer("lost-at-exit")
for number in range(300):
    with tracer.start_as_current_span(f"span-{number}"):
        pass
time.sleep(0.3)  # the first export is waiting for an answer, far from its 3 s timeout
ended.append(time.monotonic())
"""


def _run_service(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`code` run to its end by a fresh interpreter, with none of this shell's settings."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env=child_environment({}, not_inherited=("O11YKIT_", "OTEL_")),
        capture_output=True,
        text=True,
        timeout=20,
    )


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_spans_lost_when_the_process_ends_are_reported_in_one_line(protocol: str) -> None:
    with silent_peer() as peer:
        done = _run_service(_EXITING_SERVICE, peer.http_endpoint, protocol)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    lines = [line for line in done.stderr.splitlines() if "o11ykit" in line]

    # Until 2026-12-07 the 300 spans were dropped without a word.
    assert len(lines) == 1, done.stderr
    assert LOST_LINE in lines[0], lines
    assert "127.0.0.1" in lines[0] and "0.5 s timeout" in lines[0], lines
    assert report["exit_flush"] < 2.0, report  # a 0.5 s shutdown timeout, with margin


# A service whose interpreter refuses new threads once it is shutting down, as Python
# 3.12.0-3.12.2 do in atexit handlers ("can't create new thread at interpreter shutdown").
# Registered after init, the refusal runs before o11ykit's exit flush (atexit: last in, first
# out), so the flush meets it as it would there.
_NO_THREADS_AT_EXIT = """
import atexit, sys, threading

import o11ykit

handle = o11ykit.init(
    service_name="no-threads-at-exit", backend="otlp", endpoint=sys.argv[1], schedule_delay=30.0
)


def refuse_new_threads():
    def start(thread):
        raise RuntimeError("can't create new thread at interpreter shutdown")

    threading.Thread.start = start


atexit.register(refuse_new_threads)
with handle.tracer("exit").start_as_current_span("ended-before-exit"):
    pass
"""


def test_the_exit_flush_sends_where_no_thread_may_start_at_exit(tmp_path) -> None:
    from tests.support.otlp_receiver import OtlpReceiver

    with OtlpReceiver(tmp_path) as receiver:
        done = _run_service(_NO_THREADS_AT_EXIT, receiver.http_endpoint)
        assert done.returncode == 0, done.stderr
        # Until 2026-12-07 the export's deadline timer could not start, and the span was
        # dropped: "spans are not reaching the backend (unexpected RuntimeError ...)".
        assert "o11ykit" not in done.stderr, done.stderr
        spans = receiver.wait_for_spans(lambda spans: spans, 5.0)
    assert [span["name"] for span in spans] == ["ended-before-exit"]


def test_without_its_timer_an_exchange_is_still_bounded_by_its_timeout(monkeypatch) -> None:
    def refused(thread: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Timer, "start", refused)
    with silent_peer() as peer:
        transport = HttpTransport(peer.http_endpoint + "/v1/traces", {})
        started = time.monotonic()
        with pytest.raises(ExportFailure) as failed:
            transport.post(b"\x0a\x00", timeout=0.5)
        took = time.monotonic() - started
        transport.close()
    assert failed.value.kind == "timed out", failed.value
    assert took < 1.5, took


def test_a_first_span_at_exit_with_no_thread_to_send_it_is_sent_by_shutdown(
    tmp_path, monkeypatch
) -> None:
    from tests.support.otlp_receiver import OtlpReceiver

    with OtlpReceiver(tmp_path) as receiver:
        exporter = SafeSpanExporter(HttpTransport(receiver.http_traces_url, {}), Scrubber(), 5.0)
        processor = BoundedBatchProcessor(exporter, schedule_delay=30.0)
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(processor)

        def refused(thread: threading.Thread) -> None:
            raise RuntimeError("can't create new thread at interpreter shutdown")

        # Neither the export thread nor the send's deadline timer can start.
        with monkeypatch.context() as patched:
            patched.setattr(threading.Thread, "start", refused)
            with provider.get_tracer("test").start_as_current_span("first-at-exit"):
                pass  # until 2026-12-07 its end raised the RuntimeError into the service
            processor.shutdown(2.0)
        spans = receiver.wait_for_spans(lambda spans: spans, 5.0)
    assert [span["name"] for span in spans] == ["first-at-exit"]
    assert exporter.stats.exported == 1, exporter.stats
