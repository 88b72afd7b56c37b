"""Breakdown and compare: the questions Honeycomb users ask and the Jaeger API cannot answer.

`breakdown` groups the spans of a window by any attribute (count, errors, p50/p95/p99);
`compare` is BubbleUp: which attribute values are more common among the errors (or the
slow spans) than among the rest. Both are pure functions of an open store connection.

Where a key lives decides the cost (see docs/store.md and docs/store-api.md):

* span columns (`service.name`, `name`, `status`, `kind`) and resource attributes: read
  from the spans row, resource values mapped in Python (there are few resources);
* indexed span attributes: one join on span_attributes per span;
* any other span attribute: the stored OTLP span bytes are decoded, newest spans first,
  at most SCAN_LIMIT of them; the result says so (`truncated`).

Percentiles are exact (nearest rank). SQLite's GROUP BY sorts every row through a temporary
B-tree, which measured slower than streaming (group, duration, status) triples into Python
lists and sorting each group there, so the counting is done in Python too; see the report
figures in docs/store-api.md.

That costs about 1 µs a span, so a breakdown of a large window (ROLLUP_MIN_SPANS or more,
no service, operation or where filter, a rolled-up key) reads the whole minutes of the window
from the rollups tables instead (span and error counts per minute, or per 10-minute block, by
value and duration bucket) and scans only the partial minutes at its edges (or, where an edge
minute is mostly inside, reads it whole and subtracts the part outside, which is smaller),
all in one read transaction: counts and errors stay exact, percentiles
come from duration buckets, within schema.PERCENTILE_ERROR. A compare of such a window over
rolled-up keys does the same for both sides: exact for errors; for slower-than, the spans in
the threshold's duration bucket are split pro rata, and the result states the worst case.
"""

from __future__ import annotations

import difflib
import math
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from opentelemetry.proto.trace.v1 import trace_pb2

from o11ykit.store.batches import value_text  # the text ingest stores: one definition
from o11ykit.store.queries import (
    ERROR_TAG,
    QueryError,
    carries_keys,
    error_status_condition,
    keys_no_span_carries,
    rarest_pair,
)
from o11ykit.store.schema import (
    ATTRIBUTE_BLOCKS,
    BUCKETS_PER_OCTAVE,
    PERCENTILE_ERROR,
    ROLLUP_BLOCK_MINUTES,
    ROLLUP_COLUMN_KEYS,
    ROLLUP_MINUTE_NS,
    ROLLUP_RESOURCE_KEY,
    ROLLUP_SPAN_KEYS,
    SPANS_WITH_PAIR,
    bucket_duration_ns,
    duration_bucket,
    one_snapshot,
    stored_indexed_keys,
)
from o11ykit.timeformats import MAX_NS, format_duration

# Spans decoded at most when a key is read from the stored span bytes (~10 µs each).
SCAN_LIMIT = 20_000
# A compare side larger than this is examined through a sample of about this many span
# rows: a percentage from n sampled spans has a standard error of at most 50/sqrt(n) points
# (0.35 points at 20,000), well below the differences BubbleUp is looking for.
COMPARE_SAMPLE = 20_000
# The sample keeps a row when a hash of its id falls below a bound: Fibonacci hashing,
# (id * 40503) mod 2^16, which spreads any run of ids evenly (every other id, every third)
# where 1 in k by `id % k` did not. Row ids follow export order, which repeats (a client
# span, then its server span), and `id % 2 = 0` once sampled one service only: a
# difference of 50 points where there was none. The product stays in 64 bits up to 2^47 ids.
_SAMPLE_MULTIPLIER, _SAMPLE_RANGE = 40503, 1 << 16
# Below this many spans in the window a breakdown scans them (exact percentiles, ~50 ms at
# the limit); from it on, whole minutes are read from rollups (flat ~50-100 ms at 1M spans).
ROLLUP_MIN_SPANS = 50_000
# A `where` pair only spans carry drives the statement (Filters.driver) when its spans in the
# whole store, counted up to DRIVEN_PAIR_LIMIT, times DRIVEN_SPAN_COST are fewer than the
# window's: reaching a span through the pair (an index entry, then the span row) costs about
# as much as walking DRIVEN_SPAN_COST spans of the window (a covering index entry, then
# the pair's lookup). Measured on the benchmark's 1M-span hour, docs/store-api.md.
DRIVEN_PAIR_LIMIT = 250_000
DRIVEN_SPAN_COST = 2
ROLLUP_NOTE = f"percentiles from rollups, within ±{math.ceil(PERCENTILE_ERROR * 1000) / 10}%"

STATUS_LABELS = {0: "unset", 1: "ok", 2: "error"}
KIND_LABELS = {
    0: "unspecified",
    1: "internal",
    2: "server",
    3: "client",
    4: "producer",
    5: "consumer",
}
# Pseudo-keys answered from span columns; they win over attributes of the same name.
COLUMN_KEYS = {
    "service.name": "s.service",
    "name": "s.name",
    "status": "s.status_code",
    "kind": "s.kind",
}

COLUMN, INDEXED, RESOURCE, SPAN_BYTES = (
    "span column",
    "indexed span attribute",
    "resource attribute",
    "span bytes",
)


class AnalyticsError(ValueError):
    """A parameter the store cannot answer for; the message names it and what it accepts."""


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    value: str | None  # None: the spans without the key
    count: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def label(self) -> str:
        return "(none)" if self.value is None else self.value

    def to_dict(self) -> dict[str, object]:
        return {
            "value": self.value,
            "count": self.count,
            "errors": self.errors,
            "errorRate": round(self.errors / self.count, 6) if self.count else 0.0,
            "p50Ms": self.p50_ms,
            "p95Ms": self.p95_ms,
            "p99Ms": self.p99_ms,
        }


@dataclass(frozen=True)
class Breakdown:
    group_by: str
    source: str  # COLUMN, INDEXED, RESOURCE or SPAN_BYTES
    start_ns: int
    end_ns: int
    total: int  # spans grouped
    groups: list[Group]  # the largest `limit` groups, count descending
    more_groups: int = 0  # groups left out by `limit`
    truncated: bool = False  # SCAN_LIMIT reached: only the newest `total` spans were read
    approximate: bool = False  # percentiles from rollups' duration buckets
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "groupBy": self.group_by,
            "source": self.source,
            "startTimeUnixNano": str(self.start_ns),
            "endTimeUnixNano": str(self.end_ns),
            "total": self.total,
            "groups": [g.to_dict() for g in self.groups],
            "moreGroups": self.more_groups,
            "truncated": self.truncated,
            "percentiles": "from rollups (nearest rank, bucketed)"
            if self.approximate
            else "exact (nearest rank)",
            "approximate": self.approximate,
            "percentileErrorPct": round(PERCENTILE_ERROR * 100, 2) if self.approximate else 0.0,
            "note": self.note,
        }


@dataclass(frozen=True)
class Selection:
    """Which spans are compared against the rest: the errors, or those slower than a bound."""

    kind: str  # "errors" or "slower"
    threshold_ms: float | None = None

    @classmethod
    def errors(cls) -> Selection:
        return cls("errors")

    @classmethod
    def slower_than(cls, milliseconds: float) -> Selection:
        if not milliseconds >= 0:
            raise AnalyticsError(f"a slower-than bound must be at least 0 ms, got {milliseconds:g}")
        return cls("slower", float(milliseconds))

    def describe(self) -> str:
        """The selection in words: errors, or slower than 250ms (the bound as a Go duration)."""
        if self.kind == "errors":
            return "errors"
        return f"slower than {format_duration(self.threshold_ns)}"

    def sql(self) -> tuple[str, list[object]]:
        if self.kind == "errors":
            return "s.status_code = 2", []
        return "s.duration_ns > ?", [self.threshold_ns]

    @property
    def threshold_ns(self) -> int:
        """The slower-than bound in nanoseconds (0 for errors). Through float milliseconds
        the longest Go duration rounds to 2^63, one past what SQLite binds: no span is
        longer than MAX_NS in any case."""
        return min(MAX_NS, round((self.threshold_ms or 0.0) * 1_000_000))


@dataclass(frozen=True)
class Difference:
    key: str
    value: str | None
    selection_count: int
    selection_pct: float
    baseline_count: int
    baseline_pct: float

    @property
    def difference(self) -> float:
        """Percentage points more common in the selection than in the baseline."""
        return self.selection_pct - self.baseline_pct

    @property
    def ratio(self) -> float:
        return self.selection_pct / self.baseline_pct if self.baseline_pct else math.inf

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "value": self.value,
            "selectionCount": self.selection_count,
            "selectionPct": round(self.selection_pct, 3),
            "baselineCount": self.baseline_count,
            "baselinePct": round(self.baseline_pct, 3),
            "differencePct": round(self.difference, 3),
            "ratio": None if math.isinf(self.ratio) else round(self.ratio, 3),
        }


@dataclass(frozen=True)
class Comparison:
    selection: str
    start_ns: int
    end_ns: int
    selection_count: int  # spans in the selection (exact)
    baseline_count: int  # spans in the baseline (exact)
    selection_examined: int  # spans whose attributes were counted (a sample when large)
    baseline_examined: int
    keys: list[str]
    pairs: list[Difference]  # most over-represented first
    truncated: bool = False  # SCAN_LIMIT reached on the span-bytes path
    approximate: bool = False  # slower-than from rollups: the threshold's bucket split
    error_bound_pct: float = 0.0  # most any differencePct can be off by, in points
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "selection": self.selection,
            "startTimeUnixNano": str(self.start_ns),
            "endTimeUnixNano": str(self.end_ns),
            "selectionCount": self.selection_count,
            "baselineCount": self.baseline_count,
            "selectionExamined": self.selection_examined,
            "baselineExamined": self.baseline_examined,
            "keys": self.keys,
            "pairs": [p.to_dict() for p in self.pairs],
            "truncated": self.truncated,
            "approximate": self.approximate,
            "differenceErrorPct": round(self.error_bound_pct, 3),
            "note": self.note,
        }


# --------------------------------------------------------------------------------------------
# Where a key lives, and filters as SQL
# --------------------------------------------------------------------------------------------


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


def _column_value(key: str, raw: object) -> str:
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
        if wanted in (label, str(code)):
            return code
    raise AnalyticsError(f"where: {key} must be one of {', '.join(labels.values())}; got {value!r}")


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
            filters.sql.append(_IN_SPAN)
            filters.args += [key, value]
    return filters


# The span carries the indexed pair (key, value). Correlated, so the cost follows the
# window, not how common the value is overall.
_IN_SPAN = (
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
    return pair if _window_spans(conn, start_ns, end_ns, limit=enough) >= enough else None


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
            filters.sql.append(f"({_IN_SPAN} OR {in_resource})")
            filters.args += [key, value, key, value]
        else:
            span_pairs[key] = value
    elif source == RESOURCE:
        filters.sql.append(in_resource)
        filters.args += [key, value]
    else:
        filters.decoded[key] = value


# --------------------------------------------------------------------------------------------
# Reading spans through the stored bytes
# --------------------------------------------------------------------------------------------


@dataclass
class _ScannedSpan:
    service: str
    name: str
    kind: int
    status_code: int
    duration_ns: int
    resource_id: int
    attributes: dict[str, str | None]
    selected: bool


def _scan(
    conn: sqlite3.Connection, filters: Filters, chosen: str = "0", chosen_args: Iterable = ()
) -> tuple[list[_ScannedSpan], bool]:
    """The newest SCAN_LIMIT matching spans, decoded; and whether the limit cut the scan.

    `chosen` is a SQL condition marking the spans of a compare selection.
    """
    rows = conn.execute(
        f"{filters.with_sql} SELECT s.service, s.name, s.kind, s.status_code, s.duration_ns,"
        f" s.resource_id, {chosen}, s.span FROM {filters.spans_sql} WHERE {filters.where()}"
        " ORDER BY s.start_ns DESC LIMIT ?",
        [*chosen_args, *filters.spans_args, *filters.args, SCAN_LIMIT + 1],
    ).fetchall()
    truncated = len(rows) > SCAN_LIMIT
    # As in a search, a pair holds when the span's attributes or its resource's have it.
    resources = {key: _resource_values(conn, key) for key in filters.decoded}
    spans = []
    for *columns, selected, body in rows[:SCAN_LIMIT]:
        resource_id = columns[5]
        if any(
            resources[k].get(resource_id) != v and not carries_keys(body, (k,))
            for k, v in filters.decoded.items()
        ):
            continue  # the span lacks a key its resource does not make up for: not decoded
        decoded = trace_pb2.Span.FromString(body)
        attributes = {kv.key: value_text(kv.value) for kv in decoded.attributes}
        if all(
            attributes.get(k) == v or resources[k].get(resource_id) == v
            for k, v in filters.decoded.items()
        ):
            spans.append(_ScannedSpan(*columns, attributes, bool(selected)))
    return spans, truncated


def _resource_values(conn: sqlite3.Connection, key: str) -> dict[int, str]:
    rows = conn.execute("SELECT resource_id, value FROM resource_attributes WHERE key = ?", (key,))
    return dict(rows.fetchall())


def _scanned_value(span: _ScannedSpan, key: str, resources: dict[int, str]) -> str | None:
    if key in COLUMN_KEYS:
        raw = {
            "service.name": span.service,
            "name": span.name,
            "status": span.status_code,
            "kind": span.kind,
        }[key]
        return _column_value(key, raw)
    if key in span.attributes:
        return span.attributes[key]
    return resources.get(span.resource_id)


# --------------------------------------------------------------------------------------------
# breakdown
# --------------------------------------------------------------------------------------------


def breakdown(
    conn: sqlite3.Connection,
    *,
    group_by: str,
    start_ns: int,
    end_ns: int,
    service: str | None = None,
    operation: str | None = None,
    where: dict[str, str] | None = None,
    limit: int = 50,
) -> Breakdown:
    """Spans of the window grouped by `group_by`: count, errors, p50/p95/p99 per value."""
    if not group_by:
        raise AnalyticsError("groupBy: an attribute key is required")
    if limit < 1:
        raise AnalyticsError("limit must be at least 1")
    filters = build_filters(conn, start_ns, end_ns, service, operation, where)
    own_source = key_source(conn, group_by)
    source = SPAN_BYTES if filters.decoded else own_source
    truncated = False
    with one_snapshot(conn):  # rollups' coverage as checked is what is read
        minutes = None
        if not (service or operation or where):
            minutes = rollup_minutes(conn, group_by, source, start_ns, end_ns)
        if minutes is not None:
            ranked = _rollup_breakdown(conn, group_by, source, start_ns, end_ns, minutes)
        else:
            ranked, truncated = _exact_breakdown(conn, filters, group_by, source, own_source)
    note = ROLLUP_NOTE if minutes is not None else ""
    if truncated:
        note = f"read from span bytes: only the newest {SCAN_LIMIT} matching spans were examined"
    if own_source == SPAN_BYTES and keys_no_span_carries(conn, [group_by]):
        note = _carried_by_none(conn, group_by)
    return Breakdown(
        group_by=group_by,
        source=source,
        start_ns=start_ns,
        end_ns=end_ns,
        total=sum(g.count for g in ranked),
        groups=ranked[:limit],
        more_groups=max(0, len(ranked) - limit),
        truncated=truncated,
        approximate=minutes is not None,
        note=note,
    )


def _carried_by_none(conn: sqlite3.Connection, key: str) -> str:
    """The note for a key no span or resource carries: a misspelt one, most likely."""
    known = [*COLUMN_KEYS, *(k for (k,) in conn.execute("SELECT key FROM span_keys_seen"))]
    known += resource_keys(conn)
    close = difflib.get_close_matches(key, set(known), n=3)
    guess = f"; did you mean {', '.join(sorted(close))}?" if close else ""
    return f"no span or resource carries {key!r}, so every span is in (none){guess}"


def _exact_breakdown(
    conn: sqlite3.Connection, filters: Filters, key: str, source: str, own_source: str
) -> tuple[list[Group], bool]:
    """Every span of the window read and grouped: exact percentiles. `source`: where the
    spans are read from; `own_source`: the key's own (key_source), whatever the filters."""
    truncated = False
    if source == SPAN_BYTES:
        triples, truncated = _scanned_triples(conn, filters, key, own_source)
        groups = _aggregate(triples)
    else:
        groups = _aggregate(_sql_triples(conn, filters, key, source))
    # The SQL path groups by what is stored (resource ids, status codes): shown values now.
    shown = _merge(groups, _shown_value(conn, key, source))
    return _largest_first(
        _summarise(value, durations, errors) for value, (durations, errors) in shown.items()
    ), truncated


def _shown_value(conn: sqlite3.Connection, key: str, source: str) -> Callable[[object], str | None]:
    """Stored group value (resource id, status code, text) -> the value shown."""
    if source == RESOURCE:
        return _resource_values(conn, key).get
    if source == COLUMN:
        return lambda raw: _column_value(key, raw)
    return lambda raw: str(raw)


def _largest_first(groups: Iterable[Group]) -> list[Group]:
    return sorted(groups, key=lambda g: (-g.count, g.value is None, g.value or ""))


Triple = tuple[object, int, int]  # (raw group value, duration_ns, status_code)
Groups = dict[object, tuple[list[int], int]]  # raw value -> (durations, errors)


def _sql_triples(
    conn: sqlite3.Connection, filters: Filters, key: str, source: str
) -> Iterator[Triple]:
    if source == COLUMN:
        head, join, args = COLUMN_KEYS[key], "", []
    elif source == RESOURCE:
        head, join, args = "s.resource_id", "", []
    else:
        head = "a.value"
        join = "LEFT JOIN span_attributes a ON a.span_id = s.id AND a.key = ?"
        args = [key]
    return conn.execute(
        f"{filters.with_sql} SELECT {head}, s.duration_ns, s.status_code"
        f" FROM {filters.spans_sql} {join} WHERE {filters.where()}",
        [*filters.spans_args, *args, *filters.args],
    )


def _scanned_triples(
    conn: sqlite3.Connection, filters: Filters, key: str, own_source: str
) -> tuple[list[Triple], bool]:
    spans, truncated = _scan(conn, filters)
    resources = _stand_ins(conn, key, own_source)
    return [
        (_scanned_value(s, key, resources), s.duration_ns, s.status_code) for s in spans
    ], truncated


def _stand_ins(conn: sqlite3.Connection, key: str, own_source: str) -> dict[int, str]:
    """Resource id -> the value a span without `key` of its own is grouped under, read from
    its resource. Not for an indexed key: the index, the rollups and the statements read
    spans' own values only, and a span read from its bytes is grouped as they group it."""
    return _resource_values(conn, key) if own_source in (RESOURCE, SPAN_BYTES) else {}


def _aggregate(triples: Iterable[Triple]) -> Groups:
    durations: dict[object, list[int]] = {}
    errors: Counter[object] = Counter()
    for value, duration, status in triples:
        bucket = durations.get(value)
        if bucket is None:
            bucket = durations[value] = []
        bucket.append(duration)
        if status == 2:
            errors[value] += 1
    return {value: (found, errors[value]) for value, found in durations.items()}


# A group's durations: every one (exact) or a Counter of duration buckets (rollups).
Durations = TypeVar("Durations", list[int], Counter[int])


def _merge(
    groups: dict[object, tuple[Durations, int]], convert: Callable[[object], str | None]
) -> dict[object, tuple[Durations, int]]:
    """Raw group values (resource ids, status codes) -> the values shown; equal ones merged."""
    merged: dict[object, tuple[Durations, int]] = {}
    for raw, (durations, errors) in groups.items():
        value = None if raw is None else convert(raw)
        if value in merged:
            known, known_errors = merged[value]
            merged[value] = (known + durations, known_errors + errors)
        else:
            merged[value] = (durations, errors)
    return merged


def percentile(sorted_values: list[int], fraction: float) -> int:
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


def _summarise(value: object, durations: list[int], errors: int) -> Group:
    durations.sort()
    ms = [percentile(durations, q) / 1_000_000 for q in (0.5, 0.95, 0.99)]
    return Group(None if value is None else str(value), len(durations), errors, *ms)


# --------------------------------------------------------------------------------------------
# breakdown from rollups
# --------------------------------------------------------------------------------------------


def is_rolled_up(key: str, source: str) -> bool:
    """Whether rollups can answer a breakdown by `key` (found in `source`)."""
    if source in (COLUMN, RESOURCE):  # service.name and resource keys: via the resource id
        return True
    return source == INDEXED and key in ROLLUP_SPAN_KEYS


def rollup_minutes(
    conn: sqlite3.Connection, key: str, source: str, start_ns: int, end_ns: int
) -> tuple[int, int] | None:
    """The whole minutes [first, last) of the window to read from rollups; None: scan it all.

    Rollups are used when they hold every stored span, the window has whole minutes they
    still trust, and it holds at least ROLLUP_MIN_SPANS spans (below that, scanning is fast
    and exact).
    """
    if not is_rolled_up(key, source):
        return None
    return rolled_up_minutes(conn, start_ns, end_ns)


def rolled_up_minutes(
    conn: sqlite3.Connection, start_ns: int, end_ns: int
) -> tuple[int, int] | None:
    """`rollup_minutes` for any rolled-up key: breakdown and compare check their keys first."""
    state = dict(
        conn.execute(
            "SELECT key, value FROM meta"
            " WHERE key IN ('rolled_up_through_id', 'rollups_from_minute')"
        ).fetchall()
    )
    if len(state) < 2:  # a store written by a version without rollups
        return None
    newest = conn.execute("SELECT max(id) FROM spans").fetchone()[0]
    if newest is None or state["rolled_up_through_id"] < newest:
        return None
    first = max(-(-start_ns // ROLLUP_MINUTE_NS), state["rollups_from_minute"])
    last = end_ns // ROLLUP_MINUTE_NS
    if last <= first or _window_spans(conn, start_ns, end_ns) < ROLLUP_MIN_SPANS:
        return None
    # An edge minute mostly inside the window: read it whole and subtract the part outside,
    # which scans fewer spans than the part inside (see _edges).
    half = ROLLUP_MINUTE_NS // 2
    if first * ROLLUP_MINUTE_NS - start_ns > half and first - 1 >= state["rollups_from_minute"]:
        first -= 1
    if end_ns - last * ROLLUP_MINUTE_NS > half:
        last += 1
    return first, last


def _window_spans(
    conn: sqlite3.Connection, start_ns: int, end_ns: int, limit: int = ROLLUP_MIN_SPANS
) -> int:
    """Spans in the window, counted on the start-time index but never past `limit`."""
    return conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM spans WHERE start_ns >= ? AND start_ns < ? LIMIT ?)",
        (start_ns, end_ns, limit),
    ).fetchone()[0]


Histograms = dict[object, tuple[Counter[int], int]]  # raw value -> (bucket counts, errors)


def _rollup_breakdown(
    conn: sqlite3.Connection,
    key: str,
    source: str,
    start_ns: int,
    end_ns: int,
    minutes: tuple[int, int],
) -> list[Group]:
    """Whole minutes from rollups, the partial minutes at the edges scanned; all bucketed."""
    first, last = minutes
    histograms = _rolled_up(conn, key, source, first, last)
    if source == INDEXED:
        _add_spans_without(conn, histograms, first, last)
    for edge_start, edge_end, sign in _edges(start_ns, end_ns, minutes):
        edge = build_filters(conn, edge_start, edge_end, None, None, None)
        _add_spans(histograms, _sql_triples(conn, edge, key, source), sign)
    # A group whose spans were all subtracted is not in the window.
    histograms = {v: (+counts, errors) for v, (counts, errors) in histograms.items() if +counts}
    shown = _merge(histograms, _shown_value(conn, key, source))
    return _largest_first(
        _summarise_buckets(value, counts, errors) for value, (counts, errors) in shown.items()
    )


def _edges(start_ns: int, end_ns: int, minutes: tuple[int, int]) -> Iterator[tuple[int, int, int]]:
    """Where the window and the minutes read from rollups differ, to scan: (start, end, 1)
    for a part of the window outside them, to add; (start, end, -1) for a part of them
    outside the window, to subtract.
    """
    first_ns, last_ns = (minute * ROLLUP_MINUTE_NS for minute in minutes)
    if start_ns != first_ns:
        yield min(start_ns, first_ns), max(start_ns, first_ns), 1 if start_ns < first_ns else -1
    if end_ns != last_ns:
        yield min(end_ns, last_ns), max(end_ns, last_ns), 1 if end_ns > last_ns else -1


def _rolled_up(
    conn: sqlite3.Connection,
    key: str,
    source: str,
    first: int,
    last: int,
    by_resource: Histograms | None = None,
) -> Histograms:
    """Minutes [first, last) of `key` from rollups, by stored value (status and kind as numbers,
    resource attributes by resource id, service.name by service); spans without an attribute
    key are not in it. `by_resource`: `_by_resource` of the same minutes, if already read.
    """
    if source == INDEXED:
        return _histograms(_rollup_rows(conn, key, first, last))
    if key in ROLLUP_COLUMN_KEYS:  # status and kind are stored as their numbers
        rows = _rollup_rows(conn, key, first, last)
        return _histograms(
            (value if key == "name" else int(value), bucket, n, e) for value, bucket, n, e in rows
        )
    # resource keys and service.name: by resource id
    histograms = _by_resource(conn, first, last) if by_resource is None else by_resource
    if source == COLUMN:
        services = dict(conn.execute("SELECT id, service FROM resources").fetchall())
        histograms = _merge(histograms, services.get)
    return histograms


def _by_resource(conn: sqlite3.Connection, first: int, last: int) -> Histograms:
    """Every span of minutes [first, last), by resource id: also the totals."""
    rows = _rollup_rows(conn, ROLLUP_RESOURCE_KEY, first, last)
    return _histograms((int(value), bucket, n, e) for value, bucket, n, e in rows)


def _rollup_rows(
    conn: sqlite3.Connection, key: str, first: int, last: int
) -> list[tuple[str, int, int, int]]:
    """(value, bucket, spans, errors) of `key` over minutes [first, last), summed in SQL."""
    cells, args = _rollup_cells(key, first, last)
    return conn.execute(
        f"SELECT value, bucket, sum(spans), sum(errors) FROM ({cells}) GROUP BY value, bucket",
        args,
    ).fetchall()


def _rollup_cells(key: str, first: int, last: int) -> tuple[str, list[object]]:
    """SQL for the rollup rows of `key` covering minutes [first, last), and its arguments:
    the summed blocks wholly inside from rollup_blocks, the other minutes from rollups.
    """
    rows = "SELECT value, bucket, spans, errors FROM"
    by_minute = f"{rows} rollups WHERE key = ? AND minute >= ? AND minute < ?"
    first_block = -(-first // ROLLUP_BLOCK_MINUTES)
    last_block = last // ROLLUP_BLOCK_MINUTES
    if first_block >= last_block:
        return by_minute, [key, first, last]
    # Read in the same statement as the rows, so one snapshot has both: blocks summed
    # before the writer moved it on are whole; the minutes after them are read instead.
    # No such counter (not written by a store that has rollup_blocks): no blocks, all minutes.
    sealed = "coalesce((SELECT value FROM meta WHERE key = 'rollup_blocks_before'), 0)"
    blocks_end = f"max(?, min(?, {sealed}))"  # first_block <= blocks_end <= last_block
    by_block = f"{rows} rollup_blocks WHERE key = ? AND block >= ? AND block < {blocks_end}"
    after = (
        f"{rows} rollups WHERE key = ? AND minute >= {blocks_end} * {ROLLUP_BLOCK_MINUTES}"
        " AND minute < ?"
    )
    return f"{by_minute} UNION ALL {by_block} UNION ALL {after}", [
        *(key, first, first_block * ROLLUP_BLOCK_MINUTES),
        *(key, first_block, first_block, last_block),
        *(key, first_block, last_block, last),
    ]


def _add_spans_without(
    conn: sqlite3.Connection, histograms: Histograms, first: int, last: int
) -> None:
    """A span attribute's groups get the spans without it: all spans less those with it."""
    # Every span is counted once under the resource key: its buckets summed are all spans.
    cells, args = _rollup_cells(ROLLUP_RESOURCE_KEY, first, last)
    totals = conn.execute(
        f"SELECT bucket, sum(spans), sum(errors) FROM ({cells}) GROUP BY bucket", args
    ).fetchall()
    without = Counter({bucket: n for bucket, n, _ in totals})
    errors = sum(e for _, _, e in totals)
    for counts, group_errors in histograms.values():
        without.subtract(counts)
        errors -= group_errors
    without = +without  # the buckets left positive
    if without:
        histograms[None] = (without, errors)


def _histograms(rows: Iterable[tuple[object, int, int, int]]) -> Histograms:
    histograms: Histograms = {}
    for value, bucket, spans, errors in rows:
        counts, known_errors = histograms.get(value) or (Counter(), 0)
        counts[bucket] += spans
        histograms[value] = (counts, known_errors + errors)
    return histograms


def _add_spans(histograms: Histograms, triples: Iterable[Triple], sign: int = 1) -> None:
    """Spans scanned at the window's edges, added to (or, sign -1, taken from) the groups."""
    for value, duration, status in triples:
        counts, errors = histograms.get(value) or (Counter(), 0)
        counts[duration_bucket(duration)] += sign
        histograms[value] = (counts, errors + sign * (status == 2))


def bucket_percentile(counts: Counter[int], fraction: float) -> float:
    """Nearest rank over duration buckets: the duration of the bucket holding that rank."""
    rank = max(1, math.ceil(fraction * sum(counts.values())))
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        if seen >= rank:
            return bucket_duration_ns(bucket)
    raise ValueError("no spans")


def _summarise_buckets(value: object, counts: Counter[int], errors: int) -> Group:
    ms = [round(bucket_percentile(counts, q) / 1_000_000, 6) for q in (0.5, 0.95, 0.99)]
    return Group(None if value is None else str(value), sum(counts.values()), errors, *ms)


# --------------------------------------------------------------------------------------------
# compare (BubbleUp)
# --------------------------------------------------------------------------------------------


def compare(
    conn: sqlite3.Connection,
    *,
    start_ns: int,
    end_ns: int,
    selection: Selection,
    service: str | None = None,
    operation: str | None = None,
    where: dict[str, str] | None = None,
    keys: list[str] | None = None,
    limit: int = 20,
) -> Comparison:
    """(key, value) pairs ranked by how much more common they are in the selection."""
    if limit < 1:
        raise AnalyticsError("limit must be at least 1")
    filters = build_filters(conn, start_ns, end_ns, service, operation, where)
    default_keys = keys is None
    if keys is None:
        keys = list(
            dict.fromkeys(["service.name", "name", *indexed_keys(conn), *resource_keys(conn)])
        )
    keys = list(dict.fromkeys(keys))  # a key asked for twice is ranked once
    sources = {key: key_source(conn, key) for key in keys}
    chosen, chosen_args = selection.sql()
    # Rollups answer when every key asked for is rolled up; by default, the keys not rolled
    # up (enduser.id, span-bytes keys) are left out rather than scanning the window for them.
    rolled = {key: source for key, source in sources.items() if is_rolled_up(key, source)}
    truncated, bound, note = False, 0.0, ""
    with one_snapshot(conn):  # rollups' coverage as checked is what is read
        minutes = None
        if not (service or operation or where) and rolled and (default_keys or rolled == sources):
            minutes = rolled_up_minutes(conn, start_ns, end_ns)
        if minutes is not None:
            left_out = [key for key in keys if key not in rolled]
            keys, sources = list(rolled), rolled
            sides, bound = _rollup_sides(conn, sources, selection, start_ns, end_ns, minutes)
            note = "from rollups" if selection.kind == "errors" else _slower_note(bound)
            if left_out:
                note += f"; keys not rolled up, left out: {', '.join(left_out)}"
        elif filters.decoded or SPAN_BYTES in sources.values():
            sides, truncated = _scanned_sides(conn, filters, sources, chosen, chosen_args)
        else:
            sides = _sql_sides(conn, filters, sources, chosen, chosen_args)
    (sel_total, sel_n, sel_counts), (base_total, base_n, base_counts) = sides
    pairs = _rank(keys, sel_n, sel_counts, base_n, base_counts)
    if truncated:
        note = f"read from span bytes: only the newest {SCAN_LIMIT} matching spans were examined"
    return Comparison(
        selection=selection.describe(),
        start_ns=start_ns,
        end_ns=end_ns,
        selection_count=round(sel_total),
        baseline_count=round(base_total),
        selection_examined=round(sel_n),
        baseline_examined=round(base_n),
        keys=keys,
        pairs=pairs[:limit],
        truncated=truncated,
        approximate=bound > 0,
        error_bound_pct=bound,
        note=note,
    )


# (spans on this side, spans examined, (key, value) counts); from rollups, a slower-than
# side's counts are floats (the threshold's bucket split pro rata).
Side = tuple[float, float, Counter]


def _sql_sides(
    conn: sqlite3.Connection,
    filters: Filters,
    sources: dict[str, str],
    chosen: str,
    chosen_args: list,
    sample: bool = True,
) -> tuple[Side, Side]:
    total, selected = conn.execute(
        f"{filters.with_sql} SELECT count(*), coalesce(sum({chosen}), 0)"
        f" FROM {filters.spans_sql} WHERE {filters.where()}",
        [*chosen_args, *filters.spans_args, *filters.args],
    ).fetchone()
    return (
        _sql_side(conn, filters, sources, chosen, chosen_args, selected, sample),
        _sql_side(conn, filters, sources, f"NOT ({chosen})", chosen_args, total - selected, sample),
    )


def _sql_side(
    conn: sqlite3.Connection,
    filters: Filters,
    sources: dict[str, str],
    predicate: str,
    predicate_args: list,
    size: int,
    sample: bool = True,
) -> Side:
    """Value counts on one side, over every span or, when large, a sample by row id."""
    condition = predicate
    if sample and size > COMPARE_SAMPLE:
        bound = max(1, _SAMPLE_RANGE * COMPARE_SAMPLE // size)
        condition += f" AND s.id * {_SAMPLE_MULTIPLIER} % {_SAMPLE_RANGE} < {bound}"
    where, args = filters.where(condition), [*filters.spans_args, *filters.args, *predicate_args]
    counts: Counter[tuple[str, str | None]] = Counter()
    examined = 0
    resources = {
        key: _resource_values(conn, key) for key, source in sources.items() if source == RESOURCE
    }
    rows = conn.execute(
        f"{filters.with_sql} SELECT s.service, s.name, s.status_code, s.kind, s.resource_id,"
        f" count(*) FROM {filters.spans_sql} WHERE {where} GROUP BY 1, 2, 3, 4, 5",
        args,
    )
    for service, name, status, kind, resource_id, n in rows:
        examined += n
        raw = {"service.name": service, "name": name, "status": status, "kind": kind}
        for key, source in sources.items():
            if source == COLUMN:
                counts[key, _column_value(key, raw[key])] += n
            elif source == RESOURCE and resource_id in resources[key]:
                counts[key, resources[key][resource_id]] += n
    indexed = [key for key, source in sources.items() if source == INDEXED]
    if indexed:
        marks = ", ".join("?" * len(indexed))
        # CROSS JOIN keeps spans the outer loop: the window's spans, each joined through
        # span_attributes(span_id, key, value). Left to itself, SQLite read every row of the
        # keys in the key+value index of the time, the whole store's (0.47 s for a
        # 13,000-span minute of a 250,000-span store; 45 ms this way). `+a.key` reads a
        # span's few attribute rows in one range rather than seeking each key (27 ms).
        rows = conn.execute(
            f"{filters.with_sql} SELECT a.key, a.value, count(*) FROM {filters.spans_sql} "
            f"CROSS JOIN span_attributes a ON a.span_id = s.id WHERE {where} "
            f"AND +a.key IN ({marks}) GROUP BY 1, 2",
            [*args, *indexed],
        )
        for key, value, n in rows:
            counts[key, value] += n
    return size, examined, counts


def _scanned_sides(
    conn: sqlite3.Connection,
    filters: Filters,
    sources: dict[str, str],
    chosen: str,
    chosen_args: list,
) -> tuple[tuple[Side, Side], bool]:
    spans, truncated = _scan(conn, filters, chosen, chosen_args)
    keys = list(sources)
    resources = {key: _stand_ins(conn, key, source) for key, source in sources.items()}
    counts: dict[bool, Counter] = {True: Counter(), False: Counter()}
    sizes: Counter[bool] = Counter()
    for span in spans:
        sizes[span.selected] += 1
        for key in keys:
            value = _scanned_value(span, key, resources.get(key, {}))
            if value is not None:
                counts[span.selected][key, value] += 1
    selection = (sizes[True], sizes[True], counts[True])
    return (selection, (sizes[False], sizes[False], counts[False])), truncated


def _rank(
    keys: list[str], sel_n: float, sel: Counter, base_n: float, base: Counter
) -> list[Difference]:
    pairs = []
    for key in keys:
        values = {v for (k, v) in sel if k == key} | {v for (k, v) in base if k == key}
        if not values:
            continue
        # The spans without the key are a value of their own: "(none)". With float counts
        # (slower-than from rollups) what is left may be rounding noise: none, then.
        sel_none = _tidy(sel_n - sum(sel[key, v] for v in values))
        base_none = _tidy(base_n - sum(base[key, v] for v in values))
        counted = [(v, sel[key, v], base[key, v]) for v in values] + [(None, sel_none, base_none)]
        for value, in_sel, in_base in counted:
            difference = Difference(
                key,
                value,
                round(in_sel),
                _pct(in_sel, sel_n),
                round(in_base),
                _pct(in_base, base_n),
            )
            if difference.difference > 0:
                pairs.append(difference)
    pairs.sort(key=lambda d: (-d.difference, -d.ratio, d.key, d.value or ""))
    return pairs


def _tidy(count: float) -> float:
    return 0 if abs(count) < 1e-6 else count


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


# --------------------------------------------------------------------------------------------
# compare from rollups
# --------------------------------------------------------------------------------------------


def _rollup_sides(
    conn: sqlite3.Connection,
    sources: dict[str, str],
    selection: Selection,
    start_ns: int,
    end_ns: int,
    minutes: tuple[int, int],
) -> tuple[tuple[Side, Side], float]:
    """Both sides: whole minutes from rollups, the partial minutes at the edges scanned (every
    span, no sample); and the most a differencePct can be off by (0: exact).
    """
    first, last = minutes
    selected, boundary, share = _bucket_selection(selection)
    sel: Counter = Counter()
    base: Counter = Counter()
    by_resource = _by_resource(conn, first, last)
    for key, source in sources.items():
        histograms = _rolled_up(conn, key, source, first, last, by_resource)
        for value, (counts, errors) in _merge(histograms, _shown_value(conn, key, source)).items():
            if value is not None:  # the spans without the key: "(none)", in _rank
                picked = selected(counts, errors)
                sel[key, value] += picked
                base[key, value] += sum(counts.values()) - picked
    all_counts: Counter[int] = Counter()
    all_errors = 0
    for counts, errors in by_resource.values():
        all_counts.update(counts)
        all_errors += errors
    sel_n = _tidy(selected(all_counts, all_errors))
    base_n = _tidy(sum(all_counts.values()) - sel_n)
    uncertain = all_counts[boundary] * max(share, 1 - share) if boundary is not None else 0
    chosen, chosen_args = selection.sql()
    for edge_start, edge_end, sign in _edges(start_ns, end_ns, minutes):
        edge = build_filters(conn, edge_start, edge_end, None, None, None)
        edge_sel, edge_base = _sql_sides(conn, edge, sources, chosen, chosen_args, sample=False)
        sel_n += sign * edge_sel[0]
        base_n += sign * edge_base[0]
        for counts, edge_counts in ((sel, edge_sel[2]), (base, edge_base[2])):
            if sign > 0:
                counts.update(edge_counts)
            else:
                counts.subtract(edge_counts)
    # Pairs whose spans were all subtracted are not in the window (float counts: slower-than).
    sel, base = (Counter({p: n for p, n in c.items() if _tidy(n) > 0}) for c in (sel, base))
    bound = sum(min(100.0, 100.0 * uncertain / n) for n in (sel_n, base_n) if n) if uncertain else 0
    return ((sel_n, sel_n, sel), (base_n, base_n, base)), bound


def _bucket_selection(
    selection: Selection,
) -> tuple[Callable[[Counter[int], int], float], int | None, float]:
    """How many spans of a value's duration buckets (and errors) are in the selection.

    Errors: exact. Slower than T: buckets above T's all, those below none, and of T's own
    bucket the share of its width (in log scale) above T, as if the durations in it were
    spread evenly. Returns that function, T's bucket (None: exact) and the share.
    """
    if selection.kind == "errors":
        return (lambda counts, errors: errors), None, 0.0
    threshold = selection.threshold_ns
    boundary = duration_bucket(threshold)
    # 0 ns has a bucket of its own and nothing in it is slower than 0: an exact split.
    share = 0.0 if threshold <= 0 else boundary + 1 - math.log2(threshold) * BUCKETS_PER_OCTAVE

    def selected(counts: Counter[int], errors: int) -> float:
        above = sum(n for bucket, n in counts.items() if bucket > boundary)
        return above + share * counts[boundary] if share else above

    return selected, (boundary if share else None), share


def _slower_note(bound: float) -> str:
    if not bound:
        return "from rollups"
    return (
        "from rollups: the spans in the threshold's 9%-wide duration bucket are split pro rata;"
        f" differences within ±{bound:.2f} points"
    )
