"""The guided walk-through behind `python3 dev.py start`.

Starts the hello service as its own process with the console backend, sends a few
requests a learner would send, and explains what each one put into the trace. Runs
unattended (CI=true or no terminal) as well as in a terminal.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
STEPS = [
    (
        "A customer of shop 'acme' opens a product page",
        "/products/1?q=kettle&token=s3cret",
        {"X-Tenant-ID": "acme", "X-User-ID": "alice"},
        "Two spans, one trace: the SERVER span of the request and the CLIENT span of its SQL\n"
        "query. Both carry tenant.id=acme and enduser.id=alice, taken once at the edge from\n"
        "the X-Tenant-ID and X-User-ID headers. The token in the URL never reaches the backend:\n"
        "o11ykit redacts it before export.",
        True,
    ),
    (
        "Another shop asks for a product that does not exist",
        "/products/99",
        {"X-Tenant-ID": "globex", "X-User-ID": "bob"},
        "A 404 is the client's mistake, not the service's: the span is not marked as an error.",
        True,
    ),
    (
        "The load balancer checks health",
        "/health",
        {},
        "Nothing is printed: health checks, and the SQL they run, are not traced.",
        False,
    ),
    (
        "An outside caller forges baggage to pose as another tenant",
        "/products/2",
        {"baggage": "tenant.id=evil,enduser.id=mallory"},
        "The span has no tenant.id: inbound baggage is untrusted at the edge by default.",
        True,
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(port: int, workdir: str) -> tuple[subprocess.Popen, queue.Queue]:
    env = {
        **os.environ,
        "O11YKIT_BACKEND": "console",
        "O11YKIT_SCHEDULE_DELAY": "0.1",
        "HELLO_DB": os.path.join(workdir, "hello.db"),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "examples.hello_service:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in process.stderr:  # type: ignore[union-attr]
            lines.put(line.rstrip())

    threading.Thread(target=pump, daemon=True).start()
    return process, lines


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


def collect(lines: queue.Queue, expect_spans: bool) -> list[str]:
    """Span lines the service printed for the last request."""
    got: list[str] = []
    deadline = time.monotonic() + (3.0 if expect_spans else 0.6)
    while time.monotonic() < deadline:
        try:
            got.append(lines.get(timeout=0.1))
        except queue.Empty:
            if expect_spans and any("SERVER" in line for line in got):
                break
    return got


def main() -> int:
    interactive = sys.stdin.isatty() and not os.environ.get("CI")
    port = free_port()
    failures = 0
    with tempfile.TemporaryDirectory() as workdir:
        process, lines = start_service(port, workdir)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                wait_until_ready(client, process)
                print(f"\nThe hello service runs at http://127.0.0.1:{port}, traced by o11ykit,")
                print("printing each span as one line (the console backend).\n")
                for number, (title, path, headers, lesson, expect) in enumerate(STEPS, 1):
                    print(f"Step {number}. {title}\n  GET {path}")
                    client.get(path, headers=headers)
                    spans = [line for line in collect(lines, expect) if line.startswith("[")]
                    for line in spans:
                        print("    " + line)
                    print("  " + lesson.replace("\n", "\n  ") + "\n")
                    if bool(spans) != expect or "s3cret" in "".join(spans):
                        failures += 1
                    if interactive:
                        input("  (Enter for the next step) ")
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
    print("Next: `o11ykit doctor` shows your settings and tests your backend.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
