"""How long o11ykit.shutdown(timeout) takes when the backend cannot take the spans.

    python tests/support/dead_shutdown.py ENDPOINT PROTOCOL TIMEOUT {queued|inflight}

queued    the spans wait in the queue when shutdown starts (the timer is far off);
inflight  an export is already blocked on the backend when shutdown starts.
Prints one JSON line: {"elapsed": seconds shutdown took, "stats": the handle's counters}.
"""

from __future__ import annotations

import json
import sys
import time

import o11ykit


def main(endpoint: str, protocol: str, timeout: float, when: str) -> None:
    inflight = when == "inflight"
    handle = o11ykit.init(
        service_name="dead-shutdown",
        backend="otlp",
        endpoint=endpoint,
        protocol=protocol,
        schedule_delay=0.05 if inflight else 30.0,
    )
    tracer = handle.tracer("dead-shutdown")
    for number in range(20):
        with tracer.start_as_current_span(f"span-{number}"):
            pass
    if inflight:
        time.sleep(0.3)  # the timer has fired: the export thread is waiting for an answer
        for number in range(20):
            with tracer.start_as_current_span(f"late-{number}"):
                pass
    started = time.monotonic()
    o11ykit.shutdown(timeout=timeout)
    elapsed = time.monotonic() - started
    print(json.dumps({"elapsed": elapsed, "stats": handle.stats().as_dict()}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4])
