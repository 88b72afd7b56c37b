"""Shared helpers: running a snippet of Python in a fresh process, picking free ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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
