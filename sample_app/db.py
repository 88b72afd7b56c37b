"""One database per service: a SQLite file by default, a Postgres schema with DATABASE_URL.

Faults such as lock contention, pool exhaustion and a missing index behave differently on
the two, which is why both are real here: SQLite locks the whole file for a writer,
Postgres one row; SQLite's pool is per process and small, Postgres's is the same pool
with a server behind it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text

from o11ykit.settings_parsers import without_secrets

# Small on purpose: a workshop machine runs five services, and a leak must hurt quickly.
POOL_SIZE = 5
POOL_TIMEOUT_S = 2.0
SQLITE_BUSY_TIMEOUT_MS = 5000


POSTGRES_SCHEMES = ("postgresql://", "postgresql+psycopg://")


def is_postgres(url: str | None) -> bool:
    """Whether `url` names the services' Postgres; False when unset (SQLite files). Any other
    URL is refused: one for another database, or `postgres://` (which SQLAlchemy no longer
    takes), was ignored, and the services ran on SQLite files unknown to whoever set it."""
    if not url:
        return False
    if not url.startswith(POSTGRES_SCHEMES):
        raise ValueError(
            f"database URL {without_secrets(url)!r} (--database-url or DATABASE_URL): accepted:"
            f" {' or '.join(s + '...' for s in POSTGRES_SCHEMES)}; unset, SQLite files"
            " in the data directory"
        )
    return True


def database_url_option(text: str) -> str:
    """`--database-url` as argparse takes it, DATABASE_URL (its default) too: refused as the
    command line is read, before anything is seeded or started."""
    try:
        is_postgres(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def sqlite_path(data_dir: Path, schema: str) -> Path:
    return data_dir / f"{schema}.db"


def make_engine(schema: str, data_dir: Path, database_url: str | None = None) -> Engine:
    """The engine for one service's schema (its own tables, never another service's)."""
    if is_postgres(database_url):
        engine = create_engine(
            database_url,
            pool_size=POOL_SIZE,
            max_overflow=0,
            pool_timeout=POOL_TIMEOUT_S,
            pool_pre_ping=False,
            connect_args={"options": f"-csearch_path={schema}", "connect_timeout": 5},
        )
        return engine
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        f"sqlite:///{sqlite_path(data_dir, schema)}",
        pool_size=POOL_SIZE,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_S,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(connection, _record) -> None:
        cursor = connection.cursor()
        # WAL lets the catalog and its canary read while the other writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    return engine


def ensure_schema(engine: Engine, schema: str) -> None:
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
