"""The sample system for tests: a seeded template copied per stack, SQLite or Postgres."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from sample_app import seed

REPO = Path(__file__).resolve().parents[2]

POSTGRES_VARIABLE = "O11YKIT_TEST_DATABASE_URL"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get(POSTGRES_VARIABLE, DEFAULT_POSTGRES)


def postgres_unavailable() -> str | None:
    """Why the Postgres tests cannot run here, or None when a server answers."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    url = postgres_url().replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(url, connect_timeout=2):
            return None
    except Exception as exc:
        return (
            f"no Postgres answers at {postgres_url()} ({type(exc).__name__}); set "
            f"{POSTGRES_VARIABLE} to test the sample system on Postgres"
        )


def seeded_copy(template: Path, target: Path) -> Path:
    """A fresh data directory holding the template's seeded SQLite files (copied: seconds
    faster than seeding again, and each stack may change its data)."""
    if not (template / "orders.db").exists():
        seed.seed(template)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("catalog.db", "orders.db"):
        shutil.copyfile(template / name, target / name)
    return target


def o11ykit_command(
    *args: str, data_dir: Path, timeout: float = 90, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The `o11ykit` command in a fresh process, on the stack under `data_dir`, unattended;
    `env`: more variables for it."""
    env = {**os.environ, "O11YKIT_APP_DIR": str(data_dir), "CI": "true", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "o11ykit.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def processes_of(data_dir: Path) -> list[int]:
    """Every live process started for this data directory (by environment or command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            marks = (entry / "environ").read_bytes() + (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if str(data_dir).encode() in marks and state != "Z" and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def wait_gone(data_dir: Path, timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while processes_of(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    return processes_of(data_dir)
