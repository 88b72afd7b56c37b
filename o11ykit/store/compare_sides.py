"""The two sides of a compare read from spans (rollup_reads has the other way): the
(key, value) counts among the selected spans and among the rest, in SQL (through a sample
of a side larger than COMPARE_SAMPLE) or from span bytes.
"""

from __future__ import annotations

import sqlite3
from collections import Counter

from o11ykit.store.analytics_filters import Filters, column_value, resource_values
from o11ykit.store.analytics_results import COLUMN, INDEXED, RESOURCE
from o11ykit.store.span_scan import scan, scanned_value, stand_ins

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


# (spans on this side, spans examined, (key, value) counts); from rollups, a slower-than
# side's counts are floats (the threshold's bucket split pro rata).
Side = tuple[float, float, Counter]


def sql_sides(
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
        key: resource_values(conn, key) for key, source in sources.items() if source == RESOURCE
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
                counts[key, column_value(key, raw[key])] += n
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


def scanned_sides(
    conn: sqlite3.Connection,
    filters: Filters,
    sources: dict[str, str],
    chosen: str,
    chosen_args: list,
) -> tuple[tuple[Side, Side], bool]:
    spans, truncated = scan(conn, filters, chosen, chosen_args)
    keys = list(sources)
    resources = {key: stand_ins(conn, key, source) for key, source in sources.items()}
    counts: dict[bool, Counter] = {True: Counter(), False: Counter()}
    sizes: Counter[bool] = Counter()
    for span in spans:
        sizes[span.selected] += 1
        for key in keys:
            value = scanned_value(span, key, resources.get(key, {}))
            if value is not None:
                counts[span.selected][key, value] += 1
    selection = (sizes[True], sizes[True], counts[True])
    return (selection, (sizes[False], sizes[False], counts[False])), truncated


def tidy(count: float) -> float:
    """A count within rounding noise of 0 (float counts: slower-than from rollups) as 0."""
    return 0 if abs(count) < 1e-6 else count
