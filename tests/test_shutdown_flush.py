"""Spans queued when a uvicorn service is stopped with SIGTERM still arrive.

uvicorn re-raises SIGTERM after its graceful shutdown, so atexit hooks never run; o11ykit
flushes when the app's lifespan shuts down instead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import REPO, free_port
from tests.support.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.integration


def test_sigterm_under_uvicorn_loses_no_queued_span(tmp_path) -> None:
    port = free_port()
    with OtlpReceiver(tmp_path) as receiver:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("O11YKIT_", "OTEL_"))},
            "O11YKIT_BACKEND": "otlp",
            "O11YKIT_ENDPOINT": receiver.http_endpoint,
            "O11YKIT_SCHEDULE_DELAY": "30",  # nothing leaves before shutdown
            "HELLO_DB": str(tmp_path / "hello.db"),
        }
        server = subprocess.Popen(
            [
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
            ],
            cwd=REPO,
            env=env,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "service did not start"
                    time.sleep(0.1)
            for product in (1, 2, 1):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/products/{product}").read()
            server.send_signal(signal.SIGTERM)
            server.wait(15)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(5)
        spans = receiver.wait_for_spans(lambda s: len(s) >= 6, timeout=5)
    assert sum(1 for s in spans if s["kind"] == "SERVER") == 3
