"""Shared helpers: running a snippet of Python in a fresh process, picking free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Give the processes tests start the signal defaults a terminal's program has.

    Tests send SIGINT and SIGHUP to what they start and check what it does. A test run
    started in the background of a shell without job control, or under nohup, has them
    ignored, every child inherits that, and a Python child then never sees Ctrl-C: those
    tests would fail for the way the run was started. (xdist's workers are started after
    this, from this process.)
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    for number in (signal.SIGHUP, signal.SIGQUIT):
        if signal.getsignal(number) is signal.SIG_IGN:
            signal.signal(number, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_python(
    code: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter: each gets its own global tracer provider."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("O11YKIT_", "OTEL_"))}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def python_snippet():
    return run_python


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample system's SQLite databases, seeded once per test session."""
    from sample_app import seed

    directory = tmp_path_factory.mktemp("sample-template")
    seed.seed(directory)
    return directory
