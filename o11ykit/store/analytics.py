"""Breakdown and compare: the questions Honeycomb users ask and the Jaeger API cannot answer.

`breakdown` groups the spans of a window by any attribute (count, errors, p50/p95/p99);
`compare` is BubbleUp: which attribute values are more common among the errors (or the
slow spans) than among the rest. Both are pure functions of an open store connection.

Where a key lives decides the cost (`analytics_filters.key_source`; docs/store.md and
docs/store-api.md):

* span columns (`service.name`, `name`, `status`, `kind`) and resource attributes: read
  from the spans row, resource values mapped in Python (there are few resources);
* indexed span attributes: one join on span_attributes per span;
* any other span attribute: the stored OTLP span bytes are decoded, newest spans first,
  at most SCAN_LIMIT of them (`span_scan`); the result says so (`truncated`).

Percentiles are exact (nearest rank, `grouping`). That costs about 1 µs a span, so a large
window (ROLLUP_MIN_SPANS or more, no service, operation or where filter, rolled-up keys) is
read from the rollups instead (`rollup_reads`): counts and errors exact, percentiles within
schema.PERCENTILE_ERROR. A compare counts its two sides in `compare_sides`.

The result types (`analytics_results`) and the key lookups are re-exported here, so a caller
of breakdown and compare needs this module alone.
"""

from __future__ import annotations

import difflib
import sqlite3
from collections import Counter

from o11ykit.store.analytics_filters import (
    COLUMN_KEYS,
    Filters,
    build_filters,
    indexed_keys,
    key_source,
    resource_keys,
)
from o11ykit.store.analytics_results import (
    COLUMN,
    INDEXED,
    RESOURCE,
    SPAN_BYTES,
    AnalyticsError,
    Breakdown,
    Comparison,
    Difference,
    Group,
    Selection,
)
from o11ykit.store.compare_sides import scanned_sides, sql_sides, tidy
from o11ykit.store.grouping import (
    aggregate,
    largest_first,
    merge,
    scanned_triples,
    shown_value,
    sql_triples,
    summarise,
)
from o11ykit.store.queries import keys_no_span_carries
from o11ykit.store.rollup_reads import (
    ROLLUP_NOTE,
    is_rolled_up,
    rolled_up_minutes,
    rollup_breakdown,
    rollup_minutes,
    rollup_sides,
    slower_note,
)
from o11ykit.store.schema import one_snapshot
from o11ykit.store.span_scan import truncated_note

__all__ = [
    "COLUMN",
    "INDEXED",
    "RESOURCE",
    "SPAN_BYTES",
    "AnalyticsError",
    "Breakdown",
    "Comparison",
    "Difference",
    "Group",
    "Selection",
    "breakdown",
    "compare",
    "indexed_keys",
    "key_source",
    "resource_keys",
]


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
    carried_by_none = own_source == SPAN_BYTES and bool(keys_no_span_carries(conn, [group_by]))
    # Every span is in (none) then, which a read as a resource key no resource has groups
    # them in from the span rows (or rollups): all of them counted, no span bytes decoded.
    read_as = RESOURCE if carried_by_none and not filters.decoded else source
    truncated = False
    with one_snapshot(conn):  # rollups' coverage as checked is what is read
        minutes = None
        if not (service or operation or where):
            minutes = rollup_minutes(conn, group_by, read_as, start_ns, end_ns)
        if minutes is not None:
            ranked = rollup_breakdown(conn, group_by, read_as, start_ns, end_ns, minutes)
        else:
            ranked, truncated = _exact_breakdown(conn, filters, group_by, read_as, own_source)
    # The misspelt key first: it explains the one (none) group the others qualify.
    notes = [_carried_by_none(conn, group_by)] if carried_by_none else []
    if minutes is not None:
        notes.append(ROLLUP_NOTE)
    if truncated:
        notes.append(truncated_note())
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
        note="; ".join(notes),
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
        triples, truncated = scanned_triples(conn, filters, key, own_source)
        groups = aggregate(triples)
    else:
        groups = aggregate(sql_triples(conn, filters, key, source))
    # The SQL path groups by what is stored (resource ids, status codes): shown values now.
    shown = merge(groups, shown_value(conn, key, source))
    return largest_first(
        summarise(value, durations, errors) for value, (durations, errors) in shown.items()
    ), truncated


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
        if (
            selection.rolled_up
            and not (service or operation or where)
            and rolled
            and (default_keys or rolled == sources)
        ):
            minutes = rolled_up_minutes(conn, start_ns, end_ns)
        if minutes is not None:
            left_out = [key for key in keys if key not in rolled]
            keys, sources = list(rolled), rolled
            sides, bound = rollup_sides(conn, sources, selection, start_ns, end_ns, minutes)
            note = "from rollups" if selection.kind == "errors" else slower_note(bound)
            if left_out:
                note += f"; keys not rolled up, left out: {', '.join(left_out)}"
        elif filters.decoded or SPAN_BYTES in sources.values():
            sides, truncated = scanned_sides(conn, filters, sources, chosen, chosen_args)
        else:
            sides = sql_sides(conn, filters, sources, chosen, chosen_args)
    (sel_total, sel_n, sel_counts), (base_total, base_n, base_counts) = sides
    pairs = _rank(keys, sel_n, sel_counts, base_n, base_counts)
    if truncated:
        note = truncated_note()
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
        sel_none = tidy(sel_n - sum(sel[key, v] for v in values))
        base_none = tidy(base_n - sum(base[key, v] for v in values))
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


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0
