"""The sample system for tests: a seeded template copied per stack, SQLite or Postgres."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sample_app import seed

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
