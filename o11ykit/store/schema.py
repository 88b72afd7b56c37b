"""The local store's SQLite schema, and how a database file is opened.

A span row keeps the span whole (its OTLP protobuf bytes) and unpacks only what queries
filter and group on. See docs/store.md.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 1
DATABASE_NAME = "traces.db"

# Span attributes copied into span_attributes, so filtering and grouping on them is an
# index lookup. The rest are read from the stored span bytes of the remaining candidates.
INDEXED_SPAN_KEYS = (
    "tenant.id",
    "enduser.id",
    "enduser.pseudo.id",
    "http.route",
    "http.response.status_code",
    "http.request.method",
    "error.type",
    "db.system.name",
    "db.collection.name",
    "db.operation.name",
    "peer.service",
    "server.address",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS resources (
    id INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    service TEXT NOT NULL,
    attributes TEXT NOT NULL,          -- JSON object of the resource attributes
    resource BLOB NOT NULL             -- OTLP Resource protobuf bytes
);
CREATE TABLE IF NOT EXISTS resource_attributes (
    resource_id INTEGER NOT NULL REFERENCES resources(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS resource_attributes_kv
    ON resource_attributes(key, value, resource_id);
CREATE TABLE IF NOT EXISTS scopes (
    id INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    scope BLOB NOT NULL,               -- OTLP InstrumentationScope protobuf bytes
    schema_url TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS spans (
    id INTEGER PRIMARY KEY,            -- insertion order: retention removes the lowest first
    trace_id BLOB NOT NULL,            -- 16 bytes
    span_id BLOB NOT NULL,             -- 8 bytes
    parent_span_id BLOB,               -- 8 bytes or NULL for a root
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    kind INTEGER NOT NULL,             -- OTLP SpanKind number (1 internal .. 5 consumer)
    start_ns INTEGER NOT NULL,
    duration_ns INTEGER NOT NULL,
    status_code INTEGER NOT NULL,      -- OTLP StatusCode number (0 unset, 1 ok, 2 error)
    resource_id INTEGER NOT NULL REFERENCES resources(id),
    scope_id INTEGER NOT NULL REFERENCES scopes(id),
    span BLOB NOT NULL                 -- OTLP Span protobuf bytes, as received
);
CREATE INDEX IF NOT EXISTS spans_trace ON spans(trace_id);
-- Covering: a time-window scan for breakdowns reads the index alone, not each row.
CREATE INDEX IF NOT EXISTS spans_start_cover
    ON spans(start_ns, duration_ns, status_code, resource_id);
CREATE INDEX IF NOT EXISTS spans_service_start ON spans(service, start_ns);
CREATE INDEX IF NOT EXISTS spans_service_name_start ON spans(service, name, start_ns);
CREATE INDEX IF NOT EXISTS spans_service_kind_name ON spans(service, kind, name);
CREATE TABLE IF NOT EXISTS span_attributes (
    span_id INTEGER NOT NULL REFERENCES spans(id),   -- the spans row id
    key TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS span_attributes_kv ON span_attributes(key, value, span_id);
-- Covering: joining a span to its indexed attributes reads the index alone.
CREATE INDEX IF NOT EXISTS span_attributes_span_kv ON span_attributes(span_id, key, value);
"""


def open_database(directory: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open (creating if needed) the store in `directory`, in WAL mode.

    Each thread that reads or writes opens its own connection; WAL lets readers run
    while one writer commits.
    """
    path = Path(directory) / DATABASE_NAME
    if readonly:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        Path(directory).mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(SCHEMA)
        connection.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
            (SCHEMA_VERSION,),
        )
        connection.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('evicted_spans', 0)")
    # A crash loses at most the last transaction, never corrupts the file (WAL).
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=5000")
    connection.execute("PRAGMA temp_store=MEMORY")
    connection.execute("PRAGMA cache_size=-32000")  # 32 MB page cache per connection
    return connection
