"""Batches into SQLite: the Store, the one writer of a store directory.

Only `Store.write_group` touches the database, from the single writer thread (writer.py),
so SQLite never sees two writers. A group of batches is one transaction: spans, their
indexed attributes, rollups and retention together, all or nothing.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from o11ykit.store.batches import (
    Batch,
    ResourceRow,
    ScopeRow,
    SpanRow,
    batch_from_request,
    value_text,
)
from o11ykit.store.dirlock import lock_directory
from o11ykit.store.ingest_log import LogPosition
from o11ykit.store.schema import (
    INDEXED_SPAN_KEYS,
    ROLLUP_BLOCK_GRACE_MINUTES,
    ROLLUP_BLOCK_MINUTES,
    ROLLUP_COLUMN_KEYS,
    ROLLUP_MINUTE_NS,
    ROLLUP_RESOURCE_KEY,
    ROLLUP_SPAN_KEYS,
    duration_bucket,
    open_database,
    wal_autocheckpoint,
)

log = logging.getLogger("o11ykit.store")

# Retention runs when the count is this much over its limit, so not on every batch.
_COUNT_SLACK = 1.05
_AGE_CHECK_SECONDS = 5.0
# The longest maximum age: what 64-bit nanoseconds count, about 292 years. A longer one
# (`inf`, 1e30) would put the eviction cutoff where SQLite cannot bind it, and every write
# would fail.
MAX_AGE_SECONDS = (2**63 - 1) // 10**9
# Resources no span refers to any more are looked for at most this often (when evicting).
_RESOURCE_SWEEP_SECONDS = 60.0
# Listing the keys of this many stored spans takes long enough to say so first (~4 s a million).
_SPAN_KEYS_WARNING_SPANS = 100_000


# --------------------------------------------------------------------------------------------
# Rows -> SQLite
# --------------------------------------------------------------------------------------------

_INTO_SPANS = (
    "INTO spans(id, trace_id, span_id, parent_span_id, service, name, kind, start_ns,"
    " duration_ns, status_code, resource_id, scope_id, span)"
)
# OR IGNORE: a sender repeating a key in one span (OTLP forbids it, not everyone obeys) must
# not fail the batch on the primary key.
_INTO_SPAN_ATTRIBUTES = "OR IGNORE INTO span_attributes(span_id, key, value)"
# Rows per INSERT statement. An executemany of a one-row statement binds, steps and hands the
# GIL back and forth once per row; a statement of many rows does it once for all of them.
_ROWS_PER_STATEMENT = 32


@functools.cache
def _insert_sql(into: str, width: int, rows: int, then: str = "") -> str:
    one = "(" + ", ".join("?" * width) + ")"
    return f"INSERT {into} VALUES " + ", ".join([one] * rows) + then


def insert_rows(
    connection: sqlite3.Connection, into: str, rows: Sequence[tuple[Any, ...]], then: str = ""
) -> None:
    """`INSERT {into} VALUES ... {then}` for every row (all of one width), many rows a
    statement. `then`: an upsert clause (`ON CONFLICT ...`), applied row by row."""
    if not rows:
        return
    width = len(rows[0])
    whole = len(rows) - len(rows) % _ROWS_PER_STATEMENT
    if whole:
        connection.executemany(
            _insert_sql(into, width, _ROWS_PER_STATEMENT, then),
            [
                list(chain.from_iterable(rows[i : i + _ROWS_PER_STATEMENT]))
                for i in range(0, whole, _ROWS_PER_STATEMENT)
            ],
        )
    if whole < len(rows):
        connection.executemany(_insert_sql(into, width, 1, then), rows[whole:])


_ADD_TO_ROLLUP = (
    " ON CONFLICT(key, minute, value, bucket) DO UPDATE"
    " SET spans = spans + excluded.spans, errors = errors + excluded.errors"
)
_INTO_ROLLUPS = "INTO rollups(key, minute, value, bucket, spans, errors)"
_ADD_TO_BLOCK = (
    " ON CONFLICT(key, block, value, bucket) DO UPDATE"
    " SET spans = spans + excluded.spans, errors = errors + excluded.errors"
)
_INTO_ROLLUP_BLOCKS = "INTO rollup_blocks(key, block, value, bucket, spans, errors)"
_ROLLUP_KEYS = (ROLLUP_RESOURCE_KEY, *ROLLUP_COLUMN_KEYS, *ROLLUP_SPAN_KEYS)
RollupCell = tuple[str, int, str, int]  # (key, minute, value, duration bucket)


def check_retention(max_spans: object, max_age: object, *, age_name: str) -> None:
    """ValueError naming the setting unless each is None or a number in range; `age_name`:
    what the caller calls its age in seconds."""
    if max_spans is not None and (
        isinstance(max_spans, bool) or not isinstance(max_spans, int) or max_spans < 1
    ):
        raise ValueError(
            f"max_spans: {max_spans!r} is not a whole number of at least 1 (None: no limit)"
        )
    # `not 0 < age <= ...`, so that nan is refused too.
    if max_age is not None and (
        isinstance(max_age, bool)
        or not isinstance(max_age, (int, float))
        or not 0 < max_age <= MAX_AGE_SECONDS
    ):
        raise ValueError(
            f"{age_name}: {max_age!r} is not a number of seconds more than 0 and at most"
            f" {MAX_AGE_SECONDS} (about 292 years; None: no limit)"
        )


class Store:
    """The one writer of a store directory (a second is refused: dirlock.py). Not
    thread-safe: one thread calls `write`."""

    def __init__(
        self,
        directory: str | Path,
        *,
        max_spans: int | None = None,
        max_age_seconds: float | None = None,
        indexed_keys: Iterable[str] = INDEXED_SPAN_KEYS,
    ) -> None:
        check_retention(max_spans, max_age_seconds, age_name="max_age_seconds")
        self.directory = Path(directory)
        self.max_spans = max_spans
        self.max_age_seconds = max_age_seconds
        self._lock = lock_directory(self.directory)
        try:
            self.connection = open_database(self.directory)
        except BaseException:
            self._lock.close()
            raise
        try:
            self._open(frozenset(indexed_keys))
        except BaseException:  # a store that could not open must not keep its directory locked
            self.close()
            raise

    def _open(self, indexed_keys: frozenset[str]) -> None:
        # A checkpoint (with its fsync) every 64 MiB of WAL instead of every 4 MiB: commits
        # measured 6.5 ms -> 3.6 ms each for 512-span batches, readers unaffected. The
        # serving store's writer checkpoints on a thread of its own instead (checkpoints.py).
        wal_autocheckpoint(self.connection, 64 * 1024 * 1024)
        self.connection.execute("PRAGMA journal_size_limit=67108864")
        # Digest -> row id. Resources that retention deletes leave it (_forget_resources).
        self._resource_ids: dict[bytes, int] = {}
        self._scope_ids: dict[bytes, int] = {}
        # Row ids are assigned here rather than by SQLite so executemany can insert the
        # span_attributes rows that point at them in the same pass. Safe: one writer.
        self._next_id = self._scalar("SELECT coalesce(max(id), 0) FROM spans") + 1
        self._count = self._scalar("SELECT count(*) FROM spans")
        self._next_age_check = 0.0
        self._next_resource_sweep = 0.0
        self.indexed_keys = self._settle_indexed_keys(indexed_keys)
        # Rollups need every rolled-up key unpacked. A store indexing fewer keys writes none;
        # its rolled_up_through_id then stays behind and breakdowns scan spans (exact).
        self._rollup_keys = frozenset(ROLLUP_SPAN_KEYS)
        self._rollups_on = self._rollup_keys <= self.indexed_keys
        self._rollups_from_minute = self._meta("rollups_from_minute")
        self._blocks_before = self._meta("rollup_blocks_before")
        self._span_keys_seen = self._catch_up_span_keys()
        if self._rollups_on:  # after the index: catching rollups up reads it
            self._catch_up_rollups()
            with self._transaction():  # a store from before rollup_blocks: all its blocks
                self._blocks_before = self._seal_blocks()

    @property
    def span_count(self) -> int:
        return self._count

    def ingest(self, request: ExportTraceServiceRequest) -> int:
        """Validate and write one request; returns the number of spans written."""
        return self.write(batch_from_request(request, indexed_keys=self.indexed_keys))

    def write(self, batch: Batch) -> int:
        """Write one batch in one transaction; returns the number of spans written."""
        return self.write_group([batch])

    @property
    def log_position(self) -> LogPosition:
        """How far into the ingest log the database holds (see ingest_log.py)."""
        return LogPosition(self._meta("log_segment"), self._meta("log_offset"))

    def write_group(self, batches: Sequence[Batch], log_position: LogPosition | None = None) -> int:
        """Write several batches in one transaction, all or none; returns the spans written.

        One commit for the lot: a commit writes every page the batch touched, and batches
        arriving together touch many of the same pages (index tails, rollup minutes).
        `log_position`: the ingest log position just past the last of them, recorded in the
        same transaction.
        """
        new_resources: dict[bytes, int] = {}
        new_scopes: dict[bytes, int] = {}
        new_keys = set().union(*(batch.span_keys for batch in batches)) - self._span_keys_seen
        spans: list[tuple[Any, ...]] = []
        attributes: list[tuple[int, str, str]] = []
        cells: list[RollupCell] = []
        error_cells: list[RollupCell] = []
        batches = [batch for batch in batches if batch.spans]
        if not batches:
            if log_position is not None:
                with self._transaction():
                    self._set_log_position(log_position)
            return 0
        with self._transaction():
            for batch in batches:
                resource_ids = [self._resource_id(row, new_resources) for row in batch.resources]
                scope_ids = [self._scope_id(row, new_scopes) for row in batch.scopes]
                self._rows(
                    batch, resource_ids, scope_ids, self._next_id + len(spans), spans, attributes
                )
                if self._rollups_on:
                    self._rollup_cells(batch, resource_ids, cells, error_cells)
            insert_rows(self.connection, _INTO_SPANS, spans)
            self.connection.executemany(
                "INSERT OR IGNORE INTO operations(service, name, kind) VALUES (?, ?, ?)",
                {(row[4], row[5], row[6]) for row in spans},
            )
            insert_rows(self.connection, _INTO_SPAN_ATTRIBUTES, attributes)
            self.connection.executemany(
                "INSERT OR IGNORE INTO span_attribute_keys(key) VALUES (?)",
                [(key,) for key in set(map(itemgetter(1), attributes))],
            )
            self._add_span_keys_seen(new_keys, self._next_id + len(spans) - 1)
            blocks_before = self._blocks_before
            if self._rollups_on:
                blocks_before = self._write_rollups(cells, error_cells)
                self._set_meta("rolled_up_through_id", self._next_id + len(spans) - 1)
            evicted, rollups_from_minute = self._evict(len(spans))
            unused = self._delete_unused_resources() if evicted else set()
            if log_position is not None:
                self._set_log_position(log_position)
        # Only now: a rolled-back transaction must leave no trace in the caches either.
        self._resource_ids.update(new_resources)
        self._forget_resources(unused)
        self._scope_ids.update(new_scopes)
        self._span_keys_seen |= new_keys
        self._rollups_from_minute = rollups_from_minute
        self._blocks_before = blocks_before
        self._next_id += len(spans)
        self._count += len(spans) - evicted
        return len(spans)

    def evict_expired(self) -> int:
        """Evict the spans past the maximum age, with nothing to write: a store that receives
        nothing still forgets on time. Returns the spans evicted."""
        if self.max_age_seconds is None:
            return 0
        with self._transaction():
            evicted, rollups_from_minute = self._evict(0)
            unused = self._delete_unused_resources() if evicted else set()
        self._forget_resources(unused)
        self._rollups_from_minute = rollups_from_minute
        self._count -= evicted
        return evicted

    def skip(self, spans: int, log_position: LogPosition) -> None:
        """Count `spans` that could not be written as dropped, and move the log position on."""
        with self._transaction():
            self.connection.execute(
                "UPDATE meta SET value = value + ? WHERE key = 'dropped_spans'", (spans,)
            )
            self._set_log_position(log_position)

    def close(self) -> None:
        self.connection.close()
        self._lock.close()

    def _set_log_position(self, position: LogPosition) -> None:
        self._set_meta("log_segment", position.segment)
        self._set_meta("log_offset", position.offset)

    @staticmethod
    def _rows(
        batch: Batch,
        resource_ids: list[int],
        scope_ids: list[int],
        row_id: int,
        spans: list[tuple[Any, ...]],
        attributes: list[tuple[int, str, str]],
    ) -> None:
        """Append the batch's spans and span_attributes rows, ids from `row_id` on."""
        services = [row.service for row in batch.resources]
        for span in batch.spans:
            spans.append(
                (
                    row_id,
                    span.trace_id,
                    span.span_id,
                    span.parent_span_id,
                    services[span.resource],
                    span.name,
                    span.kind,
                    span.start_ns,
                    span.duration_ns,
                    span.status_code,
                    resource_ids[span.resource],
                    scope_ids[span.scope],
                    span.data,
                )
            )
            attributes += [(row_id, key, value) for key, value in span.indexed]
            row_id += 1

    # -- indexed keys -------------------------------------------------------------------------

    def _settle_indexed_keys(self, configured: frozenset[str]) -> frozenset[str]:
        """The keys to index from now on: those configured and every key indexed before.

        Searches and analytics trust the index for a key in the `indexed_keys` table, so
        every stored span must have its rows: a key configured now for the first time is
        indexed in the spans already stored (their bytes read once), and a key no longer
        configured goes on being indexed, since the spans that have its rows still do. A
        store whose writer never recorded its keys (from before the table) had them
        unrecorded: all of them, and those its spans show, are indexed in its spans once.
        """
        recorded = frozenset(k for (k,) in self.connection.execute("SELECT key FROM indexed_keys"))
        settled = self._meta("indexed_keys_settled")
        if settled:
            keys, unindexed = configured | recorded, configured - recorded
        else:
            listed = {k for (k,) in self.connection.execute("SELECT key FROM span_attribute_keys")}
            keys = configured | listed
            unindexed = keys if self._next_id > 1 else frozenset()
        if keys != recorded or not settled:
            with self._transaction():
                if unindexed:
                    self._index_stored_spans(unindexed)
                self.connection.executemany(
                    "INSERT OR IGNORE INTO indexed_keys(key) VALUES (?)", [(k,) for k in keys]
                )
                self._set_meta("indexed_keys_settled", 1)
        return keys

    def _index_stored_spans(self, keys: frozenset[str]) -> None:
        """Add `keys`' rows to span_attributes for the spans stored before they were indexed."""
        newest = self._next_id - 1
        if newest > _SPAN_KEYS_WARNING_SPANS:
            log.warning(
                "o11ykit store: indexing %s in the %d spans stored before, once",
                ", ".join(sorted(keys)),
                newest,
            )
        found: set[str] = set()
        after = 0
        while rows := self.connection.execute(
            "SELECT id, span FROM spans WHERE id > ? ORDER BY id LIMIT 4096", (after,)
        ).fetchall():
            pairs = [
                (row_id, pair.key, value_text(pair.value))
                for row_id, data in rows
                for pair in Span.FromString(data).attributes
                if pair.key in keys
            ]
            insert_rows(self.connection, _INTO_SPAN_ATTRIBUTES, pairs)
            found.update(key for _, key, _ in pairs)
            after = rows[-1][0]
        self.connection.executemany(
            "INSERT OR IGNORE INTO span_attribute_keys(key) VALUES (?)", [(k,) for k in found]
        )

    # -- span keys seen -----------------------------------------------------------------------

    def _add_span_keys_seen(self, keys: Iterable[str], through_id: int) -> None:
        """Record `keys` and that every span up to `through_id` has its keys recorded."""
        self.connection.executemany(
            "INSERT OR IGNORE INTO span_keys_seen(key) VALUES (?)", [(key,) for key in keys]
        )
        self._set_meta("span_keys_seen_through_id", through_id)

    def _catch_up_span_keys(self) -> set[str]:
        """Record the keys of spans written without them (a store from before schema 6, or
        rows written by hand); returns every key recorded. Reads each such span's bytes once."""
        through = self._meta("span_keys_seen_through_id")
        newest = self._next_id - 1
        if through < newest:
            if newest - through > _SPAN_KEYS_WARNING_SPANS:
                log.warning(
                    "o11ykit store: listing the attribute keys of %d stored spans once",
                    newest - through,
                )
            keys: set[str] = set()
            rows = self.connection.execute("SELECT span FROM spans WHERE id > ?", (through,))
            for (data,) in rows:
                keys.update(pair.key for pair in Span.FromString(data).attributes)
            with self._transaction():
                self._add_span_keys_seen(keys, newest)
        return {key for (key,) in self.connection.execute("SELECT key FROM span_keys_seen")}

    # -- rollups ------------------------------------------------------------------------------

    def _rollup_cells(
        self,
        batch: Batch,
        resource_ids: list[int],
        cells: list[RollupCell],
        error_cells: list[RollupCell],
    ) -> None:
        """Append the rollup cells of the batch's spans, and of its errors to `error_cells`.

        Counted afterwards, so each distinct cell is one upsert, not one per span.
        """
        resources = [str(rid) for rid in resource_ids]
        keys = self._rollup_keys
        first_minute = self._rollups_from_minute
        for span in batch.spans:
            minute = span.start_ns // ROLLUP_MINUTE_NS
            if minute < first_minute:  # retention has cut that minute: breakdowns scan it
                continue
            bucket = duration_bucket(span.duration_ns)
            own = [
                (ROLLUP_RESOURCE_KEY, minute, resources[span.resource], bucket),
                ("name", minute, span.name, bucket),
                ("status", minute, str(span.status_code), bucket),
                ("kind", minute, str(span.kind), bucket),
            ]
            own += [(key, minute, value, bucket) for key, value in span.indexed if key in keys]
            cells += own
            if span.status_code == 2:
                error_cells += own

    def _write_rollups(self, cells: list[RollupCell], error_cells: list[RollupCell]) -> int:
        """Add the cells to rollups (and to rollup_blocks where their block is already summed);
        returns rollup_blocks_before after sealing the blocks now over."""
        # Counter counts in C, faster than a dict updated in Python.
        counts, errors = Counter(cells), Counter(error_cells)
        # Many rows a statement, as for spans: ~0.9 cells a span, and one statement a cell
        # was most of the writer's SQLite steps (each hands the GIL to the receivers and
        # waits to get it back).
        insert_rows(
            self.connection,
            _INTO_ROLLUPS,
            [(*cell, n, errors[cell]) for cell, n in counts.items()],
            _ADD_TO_ROLLUP,
        )
        # Spans of a block already summed arrived late (or are old, as in a backfill).
        sealed = self._blocks_before
        late: Counter[RollupCell] = Counter()
        late_errors: Counter[RollupCell] = Counter()
        for (key, minute, value, bucket), n in counts.items():
            block = minute // ROLLUP_BLOCK_MINUTES
            if block < sealed:
                late[key, block, value, bucket] += n
                late_errors[key, block, value, bucket] += errors[key, minute, value, bucket]
        if late:
            insert_rows(
                self.connection,
                _INTO_ROLLUP_BLOCKS,
                [(*cell, n, late_errors[cell]) for cell, n in late.items()],
                _ADD_TO_BLOCK,
            )
        return self._seal_blocks()

    def _seal_blocks(self) -> int:
        """Sum into rollup_blocks the blocks that are over by the clock; returns the new
        rollup_blocks_before. Call in a transaction; `_blocks_before` is set after it commits.

        By the clock, not by span times: a span from the future cannot seal blocks still to
        come, and old spans (a backfill) go into blocks already summed, one upsert a cell.
        """
        now_minute = time.time_ns() // ROLLUP_MINUTE_NS
        before = (now_minute - ROLLUP_BLOCK_GRACE_MINUTES) // ROLLUP_BLOCK_MINUTES
        if before <= self._blocks_before:
            return self._blocks_before
        # Minutes already cut by retention are gone from rollups; their blocks are never read.
        first = self._blocks_before * ROLLUP_BLOCK_MINUTES
        for key in _ROLLUP_KEYS:  # one range a key: the primary key starts (key, minute)
            self.connection.execute(
                "INSERT INTO rollup_blocks(key, block, value, bucket, spans, errors)"
                f" SELECT key, minute / {ROLLUP_BLOCK_MINUTES}, value, bucket, sum(spans),"
                " sum(errors) FROM rollups WHERE key = ? AND minute >= ? AND minute < ?"
                " GROUP BY 2, 3, 4" + _ADD_TO_BLOCK,
                (key, first, before * ROLLUP_BLOCK_MINUTES),
            )
        self._set_meta("rollup_blocks_before", before)
        return before

    def _catch_up_rollups(self) -> None:
        """Roll up spans written without rollups: a store from before them, or written by hand.

        In SQL, one statement a key family: 13 s for 1M spans (2 cores), once.
        """
        through = self._meta("rolled_up_through_id")
        newest = self._next_id - 1
        if through >= newest:
            return
        self.connection.create_function(
            "o11ykit_duration_bucket", 1, duration_bucket, deterministic=True
        )
        families = [
            ("?", "CAST(s.resource_id AS TEXT)", "", [ROLLUP_RESOURCE_KEY]),
            ("'name'", "s.name", "", []),
            ("'status'", "CAST(s.status_code AS TEXT)", "", []),
            ("'kind'", "CAST(s.kind AS TEXT)", "", []),
            (
                "a.key",
                "a.value",
                "JOIN span_attributes a ON a.span_id = s.id"
                f" AND a.key IN ({', '.join('?' * len(ROLLUP_SPAN_KEYS))})",
                list(ROLLUP_SPAN_KEYS),
            ),
        ]
        first_ns = self._rollups_from_minute * ROLLUP_MINUTE_NS
        block_ns = ROLLUP_BLOCK_MINUTES * ROLLUP_MINUTE_NS
        # Into the minutes, and into the blocks already summed (later ones are summed from
        # the minutes when they are sealed).
        tables = (
            ("rollups(key, minute", ROLLUP_MINUTE_NS, _ADD_TO_ROLLUP, 2**63 - 1),
            ("rollup_blocks(key, block", block_ns, _ADD_TO_BLOCK, self._blocks_before * block_ns),
        )
        with self._transaction():
            for into, width_ns, add, before_ns in tables:
                for key, value, join, args in families:
                    self.connection.execute(
                        f"INSERT INTO {into}, value, bucket, spans, errors)"
                        f" SELECT {key}, s.start_ns / {width_ns}, {value},"
                        " o11ykit_duration_bucket(s.duration_ns), count(*),"
                        " sum(s.status_code = 2) FROM spans s "
                        f"{join} WHERE s.id > ? AND s.start_ns >= ? AND s.start_ns < ?"
                        " GROUP BY 1, 2, 3, 4" + add,
                        [*args, through, first_ns, before_ns],
                    )
            self._set_meta("rolled_up_through_id", newest)

    def _trim_rollups(self, newest_evicted_ns: int) -> int:
        """Drop rollups of the minutes eviction reached; returns the new first trusted minute.

        Every minute up to the newest evicted span's may have lost spans its rollups still
        count, so breakdowns scan those minutes (whatever is left of them) instead.
        """
        from_minute = newest_evicted_ns // ROLLUP_MINUTE_NS + 1
        if from_minute <= self._rollups_from_minute:
            return self._rollups_from_minute
        # Blocks that begin before from_minute go, the one it cuts included. Stragglers or a
        # seal may bring that one back with part of its spans; analytics never reads it,
        # as it reads only blocks wholly inside the trusted minutes.
        from_block = -(-from_minute // ROLLUP_BLOCK_MINUTES)
        for key in _ROLLUP_KEYS:  # one range delete a key: the primary key starts (key, minute)
            self.connection.execute(
                "DELETE FROM rollups WHERE key = ? AND minute < ?", (key, from_minute)
            )
            self.connection.execute(
                "DELETE FROM rollup_blocks WHERE key = ? AND block < ?", (key, from_block)
            )
        self._set_meta("rollups_from_minute", from_minute)
        return from_minute

    def _meta(self, key: str) -> int:
        return self._scalar("SELECT value FROM meta WHERE key = ?", (key,))

    def _set_meta(self, key: str, value: int) -> None:
        self.connection.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.connection.execute("COMMIT")
        except BaseException:
            # A COMMIT that failed (a full disk, a lock) can leave the transaction open, and
            # the writer's next BEGIN must find none. A failing ROLLBACK must not hide why.
            if self.connection.in_transaction:
                with suppress(sqlite3.Error):
                    self.connection.execute("ROLLBACK")
            raise

    def _scalar(self, sql: str, parameters: tuple[Any, ...] = ()) -> Any:
        return self.connection.execute(sql, parameters).fetchone()[0]

    def _resource_id(self, row: ResourceRow, new: dict[bytes, int]) -> int:
        known = self._resource_ids.get(row.digest) or new.get(row.digest)
        if known:
            return known
        cursor = self.connection.execute(
            "INSERT OR IGNORE INTO resources(digest, service, attributes, resource, schema_url)"
            " VALUES (?, ?, ?, ?, ?)",
            (row.digest, row.service, json.dumps(row.attributes), row.data, row.schema_url),
        )
        if cursor.rowcount == 1:
            resource_id = cursor.lastrowid
            self.connection.executemany(
                "INSERT INTO resource_attributes(resource_id, key, value) VALUES (?, ?, ?)",
                [(resource_id, key, value) for key, value in row.attributes.items()],
            )
        else:  # stored by an earlier run of the store, before this cache existed
            resource_id = self._scalar("SELECT id FROM resources WHERE digest = ?", (row.digest,))
        new[row.digest] = resource_id
        return resource_id

    def _scope_id(self, row: ScopeRow, new: dict[bytes, int]) -> int:
        known = self._scope_ids.get(row.digest) or new.get(row.digest)
        if known:
            return known
        self.connection.execute(
            "INSERT OR IGNORE INTO scopes(digest, scope, schema_url) VALUES (?, ?, ?)",
            (row.digest, row.data, row.schema_url),
        )
        scope_id = self._scalar("SELECT id FROM scopes WHERE digest = ?", (row.digest,))
        new[row.digest] = scope_id
        return scope_id

    # -- retention ----------------------------------------------------------------------------

    def _evict(self, added: int) -> tuple[int, int]:
        """Evict by count and age; returns the spans evicted and the first trusted minute."""
        by_count, newest_by_count = self._evict_by_count(self._count + added)
        by_age, newest_by_age = self._evict_by_age()
        evicted = by_count + by_age
        if not evicted:
            return 0, self._rollups_from_minute
        self.connection.execute(
            "UPDATE meta SET value = value + ? WHERE key = 'evicted_spans'", (evicted,)
        )
        return evicted, self._trim_rollups(max(newest_by_count, newest_by_age))

    def _delete_unused_resources(self) -> set[int]:
        """Delete the resources no span refers to any more, at most every
        _RESOURCE_SWEEP_SECONDS; returns their ids.

        Retention bounds the spans, and this the resources they leave behind: a sender
        whose resource changes with every process (or request) would otherwise grow the
        database and the writer's cache without end, whatever the limits. One pass reads
        the covering start index whole (a fraction of a second at 1M spans), hence the
        interval.
        """
        now = time.monotonic()
        if now < self._next_resource_sweep:
            return set()
        self._next_resource_sweep = now + _RESOURCE_SWEEP_SECONDS
        unused = {
            resource_id
            for (resource_id,) in self.connection.execute(
                "SELECT id FROM resources WHERE id NOT IN (SELECT resource_id FROM spans)"
            )
        }
        ids = sorted(unused)
        for first in range(0, len(ids), 500):  # SQLite binds at most 32,766 values a statement
            chunk = ids[first : first + 500]
            marks = ", ".join("?" * len(chunk))
            self.connection.execute(f"DELETE FROM resources WHERE id IN ({marks})", chunk)
        if unused:  # one pass: resource_attributes has no index led by the resource id
            self.connection.execute(
                "DELETE FROM resource_attributes"
                " WHERE resource_id NOT IN (SELECT id FROM resources)"
            )
        return unused

    def _forget_resources(self, unused: set[int]) -> None:
        """Drop deleted resources from the cache: sent again, one is stored again."""
        if unused:
            self._resource_ids = {
                digest: rid for digest, rid in self._resource_ids.items() if rid not in unused
            }

    def _evict_by_count(self, count: int) -> tuple[int, int]:
        """Spans evicted, and the newest start time among them (-1 when none)."""
        if self.max_spans is None or count <= self.max_spans * _COUNT_SLACK:
            return 0, -1
        keep_from = self._scalar(
            "SELECT id FROM spans ORDER BY id DESC LIMIT 1 OFFSET ?", (self.max_spans - 1,)
        )
        # Row ids follow arrival, not start time: a late span can be newer than the rest.
        # A span stamped in the future (a wrong clock) must not move the trusted minutes
        # past the present, which would stop rollups for good: its counts are taken out of
        # the rollups instead, cell by cell.
        now_ns = time.time_ns()
        newest = self._scalar(
            "SELECT max(start_ns) FROM spans WHERE id < ? AND start_ns <= ?", (keep_from, now_ns)
        )
        if self._rollups_on:
            self._unroll(
                self.connection.execute(
                    "SELECT id, resource_id, name, kind, status_code, start_ns, duration_ns"
                    # `+id`: walk the start index from now on (few spans, if any), not
                    # every row being evicted.
                    " FROM spans WHERE start_ns > ? AND +id < ?",
                    (now_ns, keep_from),
                ).fetchall()
            )
        self.connection.execute("DELETE FROM span_attributes WHERE span_id < ?", (keep_from,))
        evicted = self.connection.execute("DELETE FROM spans WHERE id < ?", (keep_from,)).rowcount
        return evicted, -1 if newest is None else newest

    def _unroll(self, rows: list[tuple[int, int, str, int, int, int, int]]) -> None:
        """Take spans about to be evicted out of the rollups that count them; `rows` are
        (id, resource_id, name, kind, status_code, start_ns, duration_ns). For the few spans
        whose minutes retention does not trim; the cells are `_rollup_cells`'s own."""
        if not rows:
            return
        batch, resource_ids = Batch(), []
        for row_id, resource_id, name, kind, status, start, duration in rows:
            indexed = self.connection.execute(
                "SELECT key, value FROM span_attributes WHERE span_id = ?", (row_id,)
            ).fetchall()
            resource_ids.append(resource_id)
            batch.spans.append(
                SpanRow(
                    resource=len(resource_ids) - 1,
                    scope=0,
                    trace_id=b"",
                    span_id=b"",
                    parent_span_id=None,
                    name=name,
                    kind=kind,
                    start_ns=start,
                    duration_ns=duration,
                    status_code=status,
                    data=b"",
                    indexed=indexed,
                )
            )
        cells: list[RollupCell] = []
        error_cells: list[RollupCell] = []
        self._rollup_cells(batch, resource_ids, cells, error_cells)
        counts, errors = Counter(cells), Counter(error_cells)
        where = "WHERE key = ? AND minute = ? AND value = ? AND bucket = ?"
        self.connection.executemany(
            f"UPDATE rollups SET spans = spans - ?, errors = errors - ? {where}",
            [(n, errors[cell], *cell) for cell, n in counts.items()],
        )
        self.connection.executemany(f"DELETE FROM rollups {where} AND spans <= 0", list(counts))

    def _evict_by_age(self) -> tuple[int, int]:
        """Spans evicted, and a bound on the newest start time among them (-1 when none)."""
        now = time.time()
        if self.max_age_seconds is None or now < self._next_age_check:
            return 0, -1
        self._next_age_check = now + _AGE_CHECK_SECONDS
        cutoff = int((now - self.max_age_seconds) * 1e9)
        self.connection.execute(
            "DELETE FROM span_attributes WHERE span_id IN"
            " (SELECT id FROM spans WHERE start_ns < ?)",
            (cutoff,),
        )
        evicted = self.connection.execute(
            "DELETE FROM spans WHERE start_ns < ?", (cutoff,)
        ).rowcount
        return evicted, cutoff - 1 if evicted else -1
