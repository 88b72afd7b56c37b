"""A burst of spans far larger than a tiny queue (and so its batches) can take.

    python tests/support/dead_queue.py ENDPOINT SPANS

Prints one JSON line: {"before": counters right after the burst, "after": after shutdown}.
"""

from __future__ import annotations

import json
import sys

import o11ykit


def main(endpoint: str, spans: int) -> None:
    handle = o11ykit.init(
        service_name="dead-queue",
        backend="otlp",
        endpoint=endpoint,
        max_queue_size=10,
        schedule_delay=5.0,
    )
    tracer = handle.tracer("dead-queue")
    for number in range(spans):
        with tracer.start_as_current_span(f"burst-{number}"):
            pass
    before = handle.stats().as_dict()
    o11ykit.shutdown(timeout=2.0)
    print(json.dumps({"before": before, "after": handle.stats().as_dict()}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
