"""What a store holds: its spans, the time they cover, what retention evicted and what the
writer dropped, and its size on disk. `GET /api/o11ykit/status` and `o11ykit traces status`
answer with it (docs/store-api.md).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from o11ykit.timeformats import format_time

# The counters the writer keeps in `meta` (schema.py), as the answer names them.
_COUNTERS = {
    "evicted_spans": "evictedSpans",
    "dropped_spans": "droppedSpans",
    "schema_version": "schemaVersion",
}


def store_status(connection: sqlite3.Connection) -> dict[str, Any]:
    """The status document; read in one snapshot when the caller holds one (the query server
    does). count(*) counts the cells of the smallest index's pages: at 1,000,000 spans 0.8 ms,
    62 ms when none of them was cached yet (in-process, synthetic.fill, 2026-12-07)."""
    counters = dict.fromkeys(_COUNTERS.values(), 0)
    for key, value in connection.execute(
        f"SELECT key, value FROM meta WHERE key IN ({', '.join('?' * len(_COUNTERS))})",
        tuple(_COUNTERS),
    ):
        counters[_COUNTERS[key]] = value
    # Two subqueries: SQLite answers a lone min() or max() from the index in one seek, but
    # both in one SELECT by scanning it.
    spans, oldest, newest = connection.execute(
        "SELECT (SELECT count(*) FROM spans), (SELECT min(start_ns) FROM spans),"
        " (SELECT max(start_ns) FROM spans)"
    ).fetchone()
    (services,) = connection.execute("SELECT count(DISTINCT service) FROM operations").fetchone()
    return {
        "spans": spans,
        "services": services,
        "oldestSpanStart": None if oldest is None else format_time(oldest),
        "newestSpanStart": None if newest is None else format_time(newest),
        **counters,
        **_bytes_on_disk(connection),
    }


def _bytes_on_disk(connection: sqlite3.Connection) -> dict[str, int]:
    """The database file and its write-ahead log, which holds recent commits until a
    checkpoint copies them into the file."""
    page_count = connection.execute("PRAGMA page_count").fetchone()[0]
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    path = next(row[2] for row in connection.execute("PRAGMA database_list") if row[1] == "main")
    try:
        wal = Path(f"{path}-wal").stat().st_size if path else 0
    except FileNotFoundError:  # checkpointed and removed, or never written
        wal = 0
    return {"databaseBytes": page_count * page_size, "walBytes": wal}
