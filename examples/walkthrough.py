"""The guided walk-through behind `python3 dev.py start`, on the embedded defaults.

Starts the local trace store and the hello service (traced by o11ykit, exporting to the
store) as their own processes, sends the requests a learner would send, and reads each
trace back through the store's Jaeger API v3 to show what it holds. Runs unattended
(CI=true or no terminal) as well as in a terminal, where it pauses between steps.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from rich.console import Console

from o11ykit.backends.jaeger_query import JaegerQuery, Trace
from o11ykit.store.process import StoreProcess, spawn_store
from o11ykit.traces_cli import breakdown_table, waterfall

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Step:
    title: str
    path: str
    headers: dict[str, str]
    lesson: str
    traced: bool = True
    tenant: str | None = None
    forbidden: tuple[str, ...] = ()


STEPS = (
    Step(
        "A customer of shop 'acme' opens a product page",
        "/products/1?q=kettle&token=s3cret",
        {"X-Tenant-ID": "acme", "X-User-ID": "alice"},
        "One trace, two spans: the request's SERVER span and its SQL query's CLIENT span.\n"
        "Both carry tenant.id=acme and enduser.id=alice, taken once at the edge from the\n"
        "X-Tenant-ID and X-User-ID headers. The token in the URL never reached the store:\n"
        "o11ykit redacted it before export.",
        tenant="acme",
        forbidden=("s3cret",),
    ),
    Step(
        "Another shop asks for a product that does not exist",
        "/products/99",
        {"X-Tenant-ID": "globex", "X-User-ID": "bob"},
        "A 404 is the caller's mistake, not the service's: the span is not an error.",
        tenant="globex",
    ),
    Step(
        "The load balancer checks health",
        "/health",
        {},
        "No trace at all: health checks, and the SQL they run, are not traced.",
        traced=False,
    ),
    Step(
        "An outside caller forges baggage to pose as another tenant",
        "/products/2",
        {"baggage": "tenant.id=evil,enduser.id=mallory"},
        "No tenant.id on the spans: inbound baggage is untrusted at the edge by default.",
        forbidden=("evil", "mallory"),
    ),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(port: int, store: StoreProcess, workdir: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "O11YKIT_BACKEND": "local",
        "O11YKIT_ENDPOINT": store.traces_url,
        "O11YKIT_QUERY_URL": store.query_url,
        "O11YKIT_SCHEDULE_DELAY": "0.1",
        "HELLO_DB": os.path.join(workdir, "hello.db"),
    }
    command = [
        sys.executable, "-m", "uvicorn", "examples.hello_service:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env)


def wait_until_ready(client: httpx.Client, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the hello service exited during start-up")
        try:
            client.get("/health")
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the hello service did not start within 20 s")


def read_back(query: JaegerQuery, trace_id: str, expect: bool) -> Trace | None:
    """The trace as the store holds it, once both spans arrived (or, if none is expected,
    after long enough that one would have)."""
    deadline = time.monotonic() + (5.0 if expect else 1.0)
    trace = None
    while time.monotonic() < deadline:
        trace = query.get_trace(trace_id)
        if trace is not None and len(trace.spans) >= 2:
            return trace
        time.sleep(0.1)
    return trace


def problems(step: Step, trace: Trace | None) -> list[str]:
    """What the step promised and the store does not show."""
    if not step.traced:
        return ["a health check was traced"] if trace else []
    if trace is None:
        return ["the trace did not reach the store"]
    found = []
    tenants = {span.attributes.get("tenant.id") for span in trace.spans}
    if tenants != {step.tenant}:
        found.append(f"tenant.id on the spans is {tenants}, expected {step.tenant}")
    text = repr([(s.attributes, s.resource) for s in trace.spans])
    found += [f"{word!r} reached the store" for word in step.forbidden if word in text]
    return found


def run_steps(client: httpx.Client, query: JaegerQuery, console: Console, pause: bool) -> int:
    failures = 0
    for number, step in enumerate(STEPS, 1):
        console.print(f"[bold]Step {number}. {step.title}[/bold]\n  GET {step.path}")
        trace_id = f"{random.getrandbits(128):032x}"
        # A traceparent of our own, so the walk-through knows which trace to read back.
        traceparent = f"00-{trace_id}-{random.getrandbits(64):016x}-01"
        client.get(step.path, headers={**step.headers, "traceparent": traceparent})
        trace = read_back(query, trace_id, step.traced)
        if trace is not None:
            console.print(waterfall(trace, with_attributes=True))
        console.print("  " + step.lesson.replace("\n", "\n  ") + "\n", soft_wrap=True)
        for problem in problems(step, trace):
            failures += 1
            console.print(f"  [red]✗ {problem}[/red]")
        if pause:
            input("  (Enter for the next step) ")
    return failures


def show_breakdown(query: JaegerQuery, console: Console) -> None:
    console.print("[bold]Which tenants did the service serve, and how fast?[/bold]")
    end = datetime.now(timezone.utc) + timedelta(seconds=1)
    answer = query.breakdown("tenant.id", start=end - timedelta(minutes=5), end=end)
    console.print(breakdown_table(answer))
    console.print(
        "  The question Jaeger cannot answer, asked of the local store: spans grouped by\n"
        "  an attribute, with counts, errors and latency percentiles.\n"
    )


def main() -> int:
    pause = sys.stdin.isatty() and not os.environ.get("CI")
    # Wide enough for the waterfall's bars and durations when the output is a file or pipe.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        store = spawn_store(Path(workdir) / "store", grpc_port=None)
        service = start_service(port, store, workdir)
        try:
            query = JaegerQuery(store.query_url)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                wait_until_ready(client, service)
                console.print(
                    f"\nThe local trace store runs at {store.query_url} (Jaeger API v3), and\n"
                    f"the hello service at http://127.0.0.1:{port}, traced by o11ykit.\n"
                )
                failures = run_steps(client, query, console, pause)
            show_breakdown(query, console)
        finally:
            service.terminate()
            try:
                service.wait(5)
            except subprocess.TimeoutExpired:
                service.kill()
            store.stop()
    console.print(
        "Next: `o11ykit doctor` checks your own settings and backend; `o11ykit store serve`\n"
        "and `o11ykit traces search|show|breakdown|compare` explore your own service's traces."
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
