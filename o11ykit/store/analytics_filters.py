"""Where an attribute key lives (a span column, the attribute index, resources or only the
span bytes), and a window with its filters as SQL over `spans s`, for breakdown and compare.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from o11ykit.argtypes import whole_number
from o11ykit.store.analytics_results import (
    COLUMN,
    INDEXED,
    KIND_LABELS,
    RESOURCE,
    SPAN_BYTES,
    STATUS_LABELS,
    AnalyticsError,
)
from o11ykit.store.queries import ERROR_TAG, QueryError, error_status_condition, rarest_pair
from o11ykit.store.schema import ATTRIBUTE_BLOCKS, SPANS_WITH_PAIR, stored_indexed_keys

# A `where` pair only spans carry drives the statement (Filters.driver) when its spans in the
# whole store, counted up to DRIVEN_PAIR_LIMIT, times DRIVEN_SPAN_COST are fewer than the
# window's: reaching a span through the pair (an index entry, then the span row) costs about
# as much as walking DRIVEN_SPAN_COST spans of the window (a covering index entry, then
# the pair's lookup). Measured on the benchmark's 1M-span hour, docs/store-api.md.
DRIVEN_PAIR_LIMIT = 250_000
DRIVEN_SPAN_COST = 2


# Status and kind are protobuf enums, int32 on the wire: a sender may send any such number
# (stored as sent, shown as that number), so a `where` takes every one of them.
ENUM_RANGE = range(-(2**31), 2**31)

# Pseudo-keys answered from span columns; they win over attributes of the same name.
COLUMN_KEYS = {
    "service.name": "s.service",
    "name": "s.name",
    "status": "s.status_code",
    "kind": "s.kind",
}


def key_source(conn: sqlite3.Connection, key: str) -> str:
    if key in COLUMN_KEYS:
        return COLUMN
    if key in stored_indexed_keys(conn) or _has_key(conn, "span_attribute_keys", key):
        return INDEXED
    # A resource key that spans carry too (span_keys_seen) is read from each span: a span's
    # own value is the more specific one, and its resource's stands in where it has none.
    if _has_key(conn, "resource_attributes", key) and not _has_key(conn, "span_keys_seen", key):
        return RESOURCE
    return SPAN_BYTES


def _has_key(conn: sqlite3.Connection, table: str, key: str) -> bool:
    # Both tables are keyed or indexed on key first: one index seek.
    return (
        conn.execute(f"SELECT 1 FROM {table} WHERE key = ? LIMIT 1", (key,)).fetchone() is not None
    )


def indexed_keys(conn: sqlite3.Connection) -> list[str]:
    """The keys span_attributes has held (the writer lists them in span_attribute_keys)."""
    return [key for (key,) in conn.execute("SELECT key FROM span_attribute_keys ORDER BY key")]


def resource_keys(conn: sqlite3.Connection) -> list[str]:
    return [k for (k,) in conn.execute("SELECT DISTINCT key FROM resource_attributes ORDER BY key")]


def column_value(key: str, raw: object) -> str:
    if key == "status":
        return STATUS_LABELS.get(raw, str(raw))  # type: ignore[arg-type]
    if key == "kind":
        return KIND_LABELS.get(raw, str(raw))  # type: ignore[arg-type]
    return str(raw)


def _column_code(key: str, value: str) -> int:
    """The stored number for a status or kind given as a label, a number or an OTLP enum name."""
    labels = STATUS_LABELS if key == "status" else KIND_LABELS
    wanted = value.strip().lower().removeprefix("status_code_").removeprefix("span_kind_")
    for code, label in labels.items():
        if wanted == label:
            return code
    number = whole_number(wanted)
    if number is not None and number in ENUM_RANGE:
        return number
    enum_name = "STATUS_CODE_ERROR" if key == "status" else "SPAN_KIND_SERVER"
    raise AnalyticsError(
        f"where: {key} must be one of {', '.join(labels.values())}, an OTLP name like"
        f" {enum_name}, or a number from {ENUM_RANGE.start} to {ENUM_RANGE.stop - 1};"
        f" got {value!r}"
    )


@dataclass
class Filters:
    """The window and filters as SQL over `spans s`, plus keys only the span bytes can answer.

    A statement reads `{with_sql} SELECT ... FROM {spans_sql} ... WHERE {where()}`, with
    `spans_args` before its other parameters: with a rare indexed pair in `where`
    (`driver`), the spans come from that pair's index entries rather than from a walk of
    the whole window (one tenant's spans in an hour of 1M: 11,000 joins, not 1M lookups).
    """

    sql: list[str] = field(default_factory=list)
    args: list[object] = field(default_factory=list)
    decoded: dict[str, str] = field(default_factory=dict)
    driver: tuple[str, str] | None = None

    def where(self, *extra: str) -> str:
        return " AND ".join([*self.sql, *extra])

    @property
    def with_sql(self) -> str:
        return ATTRIBUTE_BLOCKS if self.driver else ""

    @property
    def spans_sql(self) -> str:
        return SPANS_WITH_PAIR if self.driver else "spans s"

    @property
    def spans_args(self) -> list[object]:
        return list(self.driver or ())


def build_filters(
    conn: sqlite3.Connection,
    start_ns: int,
    end_ns: int,
    service: str | None,
    operation: str | None,
    where: dict[str, str] | None,
) -> Filters:
    if end_ns <= start_ns:
        raise AnalyticsError("end must be after start")
    filters = Filters(["s.start_ns >= ?", "s.start_ns < ?"], [start_ns, end_ns])
    if service:
        filters.sql.append("s.service = ?")
        filters.args.append(service)
    if operation:
        filters.sql.append("s.name = ?")
        filters.args.append(operation)
    span_pairs: dict[str, str] = {}  # indexed pairs only spans carry
    for key, value in (where or {}).items():
        _add_condition(conn, filters, key, str(value), span_pairs)
    filters.driver = _driving_pair(conn, span_pairs, start_ns, end_ns)
    for key, value in span_pairs.items():
        if (key, value) != filters.driver:  # the driver's spans all have it
            filters.sql.append(IN_SPAN)
            filters.args += [key, value]
    return filters


# The span carries the indexed pair (key, value). Correlated, so the cost follows the
# window, not how common the value is overall.
IN_SPAN = (
    "EXISTS (SELECT 1 FROM span_attributes a WHERE a.key = ? AND a.value = ? AND a.span_id = s.id)"
)


def _driving_pair(
    conn: sqlite3.Connection, pairs: dict[str, str], start_ns: int, end_ns: int
) -> tuple[str, str] | None:
    """The pair whose spans a statement starts from, when that reads fewer spans than the
    window: a span reached through the pair costs about DRIVEN_SPAN_COST spans walked."""
    found = rarest_pair(conn, pairs, DRIVEN_PAIR_LIMIT)
    if found is None:
        return None
    spans, pair = found
    enough = spans * DRIVEN_SPAN_COST + 1
    return pair if window_spans(conn, start_ns, end_ns, limit=enough) >= enough else None


def _add_condition(
    conn: sqlite3.Connection, filters: Filters, key: str, value: str, span_pairs: dict[str, str]
) -> None:
    """The condition for one `where` pair; an indexed pair only spans carry goes to
    `span_pairs` (one of them may drive the statement)."""
    if key == ERROR_TAG:  # as in a search: Jaeger's tag for the status ERROR
        try:
            filters.sql.append(str(error_status_condition(value)))
        except QueryError as exc:
            raise AnalyticsError(f"where: {exc}") from None
        return
    source = key_source(conn, key)
    if source == COLUMN:
        column = COLUMN_KEYS[key]
        filters.sql.append(f"{column} = ?")
        filters.args.append(value if key in ("service.name", "name") else _column_code(key, value))
        return
    # Jaeger matches an attribute filter against span and resource attributes alike.
    in_resource = (
        "s.resource_id IN (SELECT resource_id FROM resource_attributes WHERE key = ? AND value = ?)"
    )
    if source == INDEXED:
        if _has_key(conn, "resource_attributes", key):
            filters.sql.append(f"({IN_SPAN} OR {in_resource})")
            filters.args += [key, value, key, value]
        else:
            span_pairs[key] = value
    elif source == RESOURCE:
        filters.sql.append(in_resource)
        filters.args += [key, value]
    else:
        filters.decoded[key] = value


def resource_values(conn: sqlite3.Connection, key: str) -> dict[int, str]:
    rows = conn.execute("SELECT resource_id, value FROM resource_attributes WHERE key = ?", (key,))
    return dict(rows.fetchall())


def window_spans(conn: sqlite3.Connection, start_ns: int, end_ns: int, limit: int) -> int:
    """Spans in the window, counted on the start-time index but never past `limit`."""
    return conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM spans WHERE start_ns >= ? AND start_ns < ? LIMIT ?)",
        (start_ns, end_ns, limit),
    ).fetchone()[0]
