"""A parent that calls o11ykit.init() and forks multiprocessing children that each trace.

    python tests/support/fork_mp.py ENDPOINT PARENT CHILDREN

PARENT says what the parent does before forking:
  idle      only init(), as a script that hands all its work to a pool does;
  queued    ends a span that is still queued (not yet sent) when the children fork;
  exported  ends a span and waits until it is exported, as a service that has run a while does.
Each child ends one span and returns: multiprocessing then ends it with os._exit(), which
skips atexit, so only o11ykit's multiprocessing finalizer can send the child's span.

Prints one JSON line: {"parent_pid", "children": [{"pid", "exitcode"}, ...]}.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys

import o11ykit


def child(handle: o11ykit.Handle, index: int) -> None:
    with handle.tracer("fork-mp").start_as_current_span(f"child-{index}") as span:
        span.set_attribute("child.pid", os.getpid())


def main(endpoint: str, parent: str, children: int) -> None:
    # The timer never fires in these short lives: only exit-time flushing sends anything.
    handle = o11ykit.init(
        service_name="fork-mp", backend="otlp", endpoint=endpoint, schedule_delay=30.0
    )
    if parent in ("queued", "exported"):
        with handle.tracer("fork-mp").start_as_current_span("parent-before-fork") as span:
            span.set_attribute("child.pid", os.getpid())
    if parent == "exported" and not (handle.force_flush(5.0) and handle.stats().exported == 1):
        raise SystemExit(f"the parent's own span was not exported: {handle.stats()}")
    ctx = multiprocessing.get_context("fork")
    processes = [ctx.Process(target=child, args=(handle, index)) for index in range(children)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=15)
    report = {
        "parent_pid": os.getpid(),
        "children": [{"pid": p.pid, "exitcode": p.exitcode} for p in processes],
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
