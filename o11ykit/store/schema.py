"""The local store's SQLite schema, and how a database file is opened.

A span row keeps the span whole (its OTLP protobuf bytes) and unpacks only what queries
filter and group on. See docs/store.md.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# 2: rollups; 3: span_attributes clustered by span; 4: rollup_blocks; 5: the attribute index
# led by the block of span row ids, and span_attribute_keys; 6: span_keys_seen; 7: one
# service index, (service, start_ns, name), in place of two; 8: the service index covers
# duration, status and resource id too
SCHEMA_VERSION = 8
DATABASE_NAME = "traces.db"
# SQLite's page size for a new store, twice its default: the writer stored ~9% more spans a
# second with it, and queries kept their speed (benchmarks/README.md, "Page size").
PAGE_BYTES = 8192
log = logging.getLogger("o11ykit.store")

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

# Rollups: per-minute span and error counts by duration bucket, so a breakdown over a large
# window reads a few rows a minute instead of every span. See docs/store.md.
ROLLUP_MINUTE_NS = 60 * 10**9
# The same counts per block of 10 minutes: a one-hour breakdown sums ~6 times fewer rows
# (tenant.id over 1M spans: 23,000 rather than 138,000), and the sort behind its GROUP BY
# with them. The minutes at a window's ends still come from the per-minute rows. A block is
# summed from its minutes once it is over (plus ROLLUP_BLOCK_GRACE_MINUTES for stragglers),
# so ingest pays once per block, not once per batch.
ROLLUP_BLOCK_MINUTES = 10
ROLLUP_BLOCK_GRACE_MINUTES = 2
# One value per user: their rollups would be as large as the spans themselves.
HIGH_CARDINALITY_KEYS = frozenset({"enduser.id", "enduser.pseudo.id"})
ROLLUP_SPAN_KEYS = tuple(k for k in INDEXED_SPAN_KEYS if k not in HIGH_CARDINALITY_KEYS)
# Span columns rolled up under these keys; the value is the column (status and kind as numbers).
ROLLUP_COLUMN_KEYS = ("name", "status", "kind")
# Every span is counted once under this key with its resource id as the value: the totals,
# and through the resources table service.name and every resource attribute.
ROLLUP_RESOURCE_KEY = ""
# Duration buckets are 1/8 octave wide (a factor of 2^(1/8), 9%); a bucket is reported by its
# geometric middle, so a percentile read from buckets is within 2^(1/16) - 1 of a duration in
# the same bucket: the exact nearest-rank value.
BUCKETS_PER_OCTAVE = 8
PERCENTILE_ERROR = 2 ** (1 / (2 * BUCKETS_PER_OCTAVE)) - 1  # 0.0443
_ZERO_BUCKET = -1  # durations of 0 ns (log2 has no value there)


def duration_bucket(duration_ns: int) -> int:
    """The log-scale bucket of a duration: floor(log2(ns) * 8); 0 ns has a bucket of its own."""
    if duration_ns <= 0:
        return _ZERO_BUCKET
    return math.floor(math.log2(duration_ns) * BUCKETS_PER_OCTAVE)


def bucket_duration_ns(bucket: int) -> float:
    """The duration a bucket stands for: the geometric middle of its bounds."""
    if bucket == _ZERO_BUCKET:
        return 0.0
    return 2 ** ((bucket + 0.5) / BUCKETS_PER_OCTAVE)


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
    resource BLOB NOT NULL,            -- OTLP Resource protobuf bytes
    schema_url TEXT NOT NULL DEFAULT '' -- ResourceSpans.schema_url
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
-- A search by service walks its spans newest first; by operation too, it skips the others
-- without reading their rows. One index for both: a second one on (service, name,
-- start_ns) took ~10% of the writer's time, its entries scattered over every operation
-- (benchmarks/README.md, "Schema 7"). Covering, as the start index is: a breakdown under a
-- service, or a search with a duration, reads no span row it does not return (a third less
-- time, and less than half for a rare duration: "Schema 8").
CREATE INDEX IF NOT EXISTS spans_service_start_cover
    ON spans(service, start_ns, name, duration_ns, status_code, resource_id);
DROP INDEX IF EXISTS spans_service_start;
DROP INDEX IF EXISTS spans_service_name_start;
DROP INDEX IF EXISTS spans_service_start_name;
-- Every (service, operation, kind) seen, kept by the writer: answering /api/v3/operations
-- from it costs nothing, where an index over spans for it would cost every insert.
CREATE TABLE IF NOT EXISTS operations (
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    kind INTEGER NOT NULL,
    PRIMARY KEY (service, name, kind)
) WITHOUT ROWID;
DROP INDEX IF EXISTS spans_service_kind_name;
-- Clustered by span: the rows of a batch append at the end of one b-tree, and joining a
-- span to its indexed attributes reads them side by side. (Stores from before schema 3 have
-- a rowid table with an index on the same columns, span_attributes_span_kv; the same
-- statements serve both.)
CREATE TABLE IF NOT EXISTS span_attributes (
    span_id INTEGER NOT NULL REFERENCES spans(id),   -- the spans row id
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (span_id, key, value)
) WITHOUT ROWID;
-- Led by the block of span row ids, so the rows a writer group adds land in one small region
-- at the end of the index rather than one place per value all over it (a user id's): the
-- WAL a store writes fell by 29% (benchmarks/store/write_layout.py). A lookup seeks each
-- block (ATTRIBUTE_BLOCKS).
CREATE INDEX IF NOT EXISTS span_attributes_block_kv ON span_attributes(span_id >> 12, key, value);
-- Every key span_attributes has held, kept by the writer: the index above no longer gives
-- the distinct keys in one seek each.
CREATE TABLE IF NOT EXISTS span_attribute_keys (
    key TEXT PRIMARY KEY
) WITHOUT ROWID;
-- The span attribute keys the store indexes: every key any start of its writer was
-- configured with, whose values every stored span has in span_attributes. A store indexes
-- more keys over time, never fewer. Empty in a store from before it: the defaults.
CREATE TABLE IF NOT EXISTS indexed_keys (
    key TEXT PRIMARY KEY
) WITHOUT ROWID;
-- Every attribute key a span has carried, indexed or not, kept by the writer (through the
-- span row id meta.span_keys_seen_through_id). A search on a key no span carries, such as
-- service.version (a resource attribute), then looks up resources instead of reading the
-- bytes of every span in its window.
CREATE TABLE IF NOT EXISTS span_keys_seen (
    key TEXT PRIMARY KEY
) WITHOUT ROWID;
-- One row per (key, minute of start time, value, duration bucket), written with the spans.
-- No service column: it multiplied the rows of attribute keys by 4 (587k rows for 1M spans
-- rather than 140k for tenant.id), so breakdowns filtered by service scan spans instead.
CREATE TABLE IF NOT EXISTS rollups (
    key TEXT NOT NULL,                 -- ROLLUP_RESOURCE_KEY, a column key or a span key
    minute INTEGER NOT NULL,           -- start_ns // ROLLUP_MINUTE_NS
    value TEXT NOT NULL,               -- spans without the key have no row under it
    bucket INTEGER NOT NULL,           -- duration_bucket(duration_ns)
    spans INTEGER NOT NULL,
    errors INTEGER NOT NULL,           -- spans with status code ERROR
    PRIMARY KEY (key, minute, value, bucket)
) WITHOUT ROWID;
-- The rollups summed over blocks of ROLLUP_BLOCK_MINUTES minutes: the blocks before
-- meta.rollup_blocks_before, each summed once it was over, plus any spans that came later.
CREATE TABLE IF NOT EXISTS rollup_blocks (
    key TEXT NOT NULL,
    block INTEGER NOT NULL,            -- minute // ROLLUP_BLOCK_MINUTES
    value TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    spans INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    PRIMARY KEY (key, block, value, bucket)
) WITHOUT ROWID;
"""


# Span row ids per block of the attribute index: 2^12 = 4096, one writer group (GROUP_SPANS).
# Larger blocks scatter a group's rows over a region of the index that grows as the block
# fills; smaller ones add seeks to every lookup (244 blocks at 1M spans).
ATTRIBUTE_BLOCK_SHIFT = 12
# The blocks that hold spans, as the table `attribute_blocks(block)`: a lookup of a key and
# value joins it to span_attributes ON (span_id >> 12) = block, one index seek a block.
ATTRIBUTE_BLOCKS = (
    "WITH RECURSIVE attribute_blocks(block) AS ("
    f" SELECT (SELECT min(id) FROM spans) >> {ATTRIBUTE_BLOCK_SHIFT}"
    " UNION ALL SELECT block + 1 FROM attribute_blocks"
    f" WHERE block < (SELECT max(id) FROM spans) >> {ATTRIBUTE_BLOCK_SHIFT})"
)
# Joined after ATTRIBUTE_BLOCKS, with the key and value as parameters. CROSS JOIN keeps the
# blocks the outer loop; the expression must be written as the index writes it.
ATTRIBUTE_LOOKUP = (
    "attribute_blocks CROSS JOIN span_attributes {alias}"
    f" ON ({{alias}}.span_id >> {ATTRIBUTE_BLOCK_SHIFT}) = attribute_blocks.block"
    " AND {alias}.key = ? AND {alias}.value = ?"
)
# The spans carrying one key and value, as `spans s` (after ATTRIBUTE_BLOCKS; the key and
# value as parameters). CROSS JOIN: SQLite keeps the pair's entries the outer loop. Given a
# service, an operation or a time window it would rather walk that index and scan every
# block for each of its spans (an hour of the 1M-span benchmark store: 10 ms became 0.6 s).
SPANS_WITH_PAIR = ATTRIBUTE_LOOKUP.format(alias="d") + " CROSS JOIN spans s ON s.id = d.span_id"


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
        # Only a new, empty file takes it; a store keeps the page size it was made with.
        connection.execute(f"PRAGMA page_size={PAGE_BYTES}")
        connection.execute("PRAGMA journal_mode=WAL")
        from_schema_4 = _has_index(connection, "span_attributes_kv")
        if _has_index(connection, "spans_service_name_start") or _has_index(
            connection, "spans_service_start_name"
        ):
            log.warning(
                "o11ykit store: upgrading %s to schema %d: building the service index once"
                " (about 2 s a million spans on a 2-core machine)",
                path,
                SCHEMA_VERSION,
            )
        if from_schema_4:
            # Said before it starts: the script below builds the new index, and a start
            # that takes seconds in silence looks hung.
            log.warning(
                "o11ykit store: upgrading %s to schema %d: building the span attribute index"
                " once (12-13 s a million spans on a 2-core machine)",
                path,
                SCHEMA_VERSION,
            )
        connection.executescript(SCHEMA)
        _add_resource_schema_url(connection)
        if from_schema_4:
            _retire_key_value_index(connection)
        _init_meta(connection)
    # A crash loses at most the last transaction, never corrupts the file (WAL).
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=5000")
    connection.execute("PRAGMA temp_store=MEMORY")
    connection.execute("PRAGMA cache_size=-32000")  # 32 MB page cache per connection
    return connection


def wal_autocheckpoint(connection: sqlite3.Connection, wal_bytes: int) -> None:
    """Checkpoint automatically once the WAL holds `wal_bytes`: SQLite counts it in pages,
    and a store keeps the page size it was made with (PAGE_BYTES, or 4 KiB before)."""
    (page_size,) = connection.execute("PRAGMA page_size").fetchone()
    connection.execute(f"PRAGMA wal_autocheckpoint={wal_bytes // page_size}")


def stored_indexed_keys(connection: sqlite3.Connection) -> frozenset[str]:
    """The keys the store's index holds for every span (the `indexed_keys` table, which may
    be empty); the defaults in a store no writer has recorded its keys in yet."""
    try:
        settled = connection.execute(
            "SELECT value FROM meta WHERE key = 'indexed_keys_settled'"
        ).fetchone()
        if settled and settled[0]:
            return frozenset(key for (key,) in connection.execute("SELECT key FROM indexed_keys"))
    except sqlite3.OperationalError:  # a store from before the table, opened read-only
        pass
    return frozenset(INDEXED_SPAN_KEYS)


@contextmanager
def one_snapshot(connection: sqlite3.Connection) -> Iterator[None]:
    """The statements inside read one snapshot of the store, while the writer commits more:
    a trace's spans and their resources, rollups and the spans at a window's edges."""
    if connection.in_transaction:
        yield
        return
    connection.execute("BEGIN")
    try:
        yield
    finally:
        connection.execute("COMMIT")  # nothing was written: this only ends the read


def _has_index(connection: sqlite3.Connection, name: str) -> bool:
    """Whether the database has an index of that name: span_attributes_kv is the attribute
    index of schemas 1 to 4, (key, value, span_id); spans_service_name_start one of the two
    service indexes of schemas 1 to 6, spans_service_start_name the one of schema 7."""
    found = connection.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?", (name,)
    ).fetchone()
    return found is not None


def _add_resource_schema_url(connection: sqlite3.Connection) -> None:
    """A store from before schema 6 kept no resource schema URL: add the column."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(resources)")}
    if "schema_url" not in columns:
        connection.execute("ALTER TABLE resources ADD COLUMN schema_url TEXT NOT NULL DEFAULT ''")


def _retire_key_value_index(connection: sqlite3.Connection) -> None:
    """A store from before schema 5: list its keys from the old index, then drop it."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        # One seek a key on the old index (key, value, span_id), not a scan.
        connection.execute(
            "INSERT OR IGNORE INTO span_attribute_keys(key)"
            " WITH RECURSIVE k(key) AS (SELECT min(key) FROM span_attributes UNION ALL"
            " SELECT (SELECT min(key) FROM span_attributes WHERE key > k.key) FROM k"
            " WHERE k.key IS NOT NULL) SELECT key FROM k WHERE key IS NOT NULL"
        )
        connection.execute("DROP INDEX span_attributes_kv")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _init_meta(connection: sqlite3.Connection) -> None:
    connection.execute(
        "INSERT INTO meta(key, value) VALUES ('schema_version', ?)"
        " ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
        (SCHEMA_VERSION,),
    )
    # rolled_up_through_id: the highest span row id counted in rollups. A store written by an
    # older version (or by hand) has spans above it, and breakdowns then scan spans until the
    # writer catches up. rollups_from_minute: rollups before it are gone or missing evicted
    # spans, so that part of a window is scanned.
    # rollup_blocks_before: rollup_blocks holds every block before it (Store._seal_blocks);
    # later blocks are still open, read from rollups. A store from before rollup_blocks
    # starts at 0 and has its blocks summed when the writer next opens it.
    # log_segment, log_offset: how far into the ingest log (ingest_log.py) the database
    # holds. dropped_spans: accepted spans the writer could not write.
    # span_keys_seen_through_id: the highest span row id whose keys are in span_keys_seen.
    # indexed_keys_settled: 1 once a writer has recorded its keys in indexed_keys; 0 in a new
    # store, or one from before that table, whose spans were indexed with unrecorded keys.
    for key in (
        "evicted_spans",
        "rolled_up_through_id",
        "rollups_from_minute",
        "rollup_blocks_before",
        "log_segment",
        "log_offset",
        "dropped_spans",
        "span_keys_seen_through_id",
        "indexed_keys_settled",
    ):
        connection.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, 0)", (key,))
    # A store written before the operations table existed: fill it once.
    if connection.execute("SELECT NOT EXISTS (SELECT 1 FROM operations)").fetchone()[0]:
        connection.execute(
            "INSERT OR IGNORE INTO operations SELECT DISTINCT service, name, kind FROM spans"
        )
