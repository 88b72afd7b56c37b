"""Breakdown and compare of a large window from the rollups tables (docs/store.md).

The whole minutes of the window come from rollups (span and error counts per minute, or per
10-minute block, by value and duration bucket), the partial minutes at its edges are
scanned (or, where an edge minute is mostly inside, it is read whole and the part outside
subtracted), all in the caller's one read transaction: counts and errors stay exact,
percentiles come from duration buckets, within schema.PERCENTILE_ERROR. For slower-than,
the spans in the threshold's duration bucket are split pro rata and the result states the
worst case.
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from o11ykit.store.analytics_filters import build_filters, window_spans
from o11ykit.store.analytics_results import COLUMN, INDEXED, RESOURCE, Group, Selection
from o11ykit.store.compare_sides import Side, sql_sides, tidy
from o11ykit.store.grouping import Triple, largest_first, merge, shown_value, sql_triples
from o11ykit.store.schema import (
    BUCKETS_PER_OCTAVE,
    PERCENTILE_ERROR,
    ROLLUP_BLOCK_MINUTES,
    ROLLUP_COLUMN_KEYS,
    ROLLUP_MINUTE_NS,
    ROLLUP_RESOURCE_KEY,
    ROLLUP_SPAN_KEYS,
    bucket_duration_ns,
    duration_bucket,
)

# Below this many spans in the window a breakdown scans them (exact percentiles, ~50 ms at
# the limit); from it on, whole minutes are read from rollups (flat ~50-100 ms at 1M spans).
ROLLUP_MIN_SPANS = 50_000
ROLLUP_NOTE = f"percentiles from rollups, within ±{math.ceil(PERCENTILE_ERROR * 1000) / 10}%"


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
    if last <= first or window_spans(conn, start_ns, end_ns, ROLLUP_MIN_SPANS) < ROLLUP_MIN_SPANS:
        return None
    # An edge minute mostly inside the window: read it whole and subtract the part outside,
    # which scans fewer spans than the part inside (see _edges).
    half = ROLLUP_MINUTE_NS // 2
    if first * ROLLUP_MINUTE_NS - start_ns > half and first - 1 >= state["rollups_from_minute"]:
        first -= 1
    if end_ns - last * ROLLUP_MINUTE_NS > half:
        last += 1
    return first, last


Histograms = dict[object, tuple[Counter[int], int]]  # raw value -> (bucket counts, errors)


def rollup_breakdown(
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
        _add_spans(histograms, sql_triples(conn, edge, key, source), sign)
    # A group whose spans were all subtracted is not in the window.
    histograms = {v: (+counts, errors) for v, (counts, errors) in histograms.items() if +counts}
    shown = merge(histograms, shown_value(conn, key, source))
    return largest_first(
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
        histograms = merge(histograms, services.get)
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


def rollup_sides(
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
    selected, boundary, share = bucket_selection(selection)
    sel: Counter = Counter()
    base: Counter = Counter()
    by_resource = _by_resource(conn, first, last)
    for key, source in sources.items():
        histograms = _rolled_up(conn, key, source, first, last, by_resource)
        for value, (counts, errors) in merge(histograms, shown_value(conn, key, source)).items():
            if value is not None:  # the spans without the key: "(none)", in _rank
                picked = selected(counts, errors)
                sel[key, value] += picked
                base[key, value] += sum(counts.values()) - picked
    all_counts: Counter[int] = Counter()
    all_errors = 0
    for counts, errors in by_resource.values():
        all_counts.update(counts)
        all_errors += errors
    sel_n = tidy(selected(all_counts, all_errors))
    base_n = tidy(sum(all_counts.values()) - sel_n)
    uncertain = all_counts[boundary] * max(share, 1 - share) if boundary is not None else 0
    chosen, chosen_args = selection.sql()
    for edge_start, edge_end, sign in _edges(start_ns, end_ns, minutes):
        edge = build_filters(conn, edge_start, edge_end, None, None, None)
        edge_sel, edge_base = sql_sides(conn, edge, sources, chosen, chosen_args, sample=False)
        sel_n += sign * edge_sel[0]
        base_n += sign * edge_base[0]
        for counts, edge_counts in ((sel, edge_sel[2]), (base, edge_base[2])):
            if sign > 0:
                counts.update(edge_counts)
            else:
                counts.subtract(edge_counts)
    # Pairs whose spans were all subtracted are not in the window (float counts: slower-than).
    sel, base = (Counter({p: n for p, n in c.items() if tidy(n) > 0}) for c in (sel, base))
    bound = sum(min(100.0, 100.0 * uncertain / n) for n in (sel_n, base_n) if n) if uncertain else 0
    return ((sel_n, sel_n, sel), (base_n, base_n, base)), bound


def bucket_selection(
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


def slower_note(bound: float) -> str:
    if not bound:
        return "from rollups"
    return (
        "from rollups: the spans in the threshold's 9%-wide duration bucket are split pro rata;"
        f" differences within ±{bound:.2f} points"
    )
