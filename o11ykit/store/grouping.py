"""Spans -> groups with exact percentiles: (group value, duration, status) triples read in
SQL or from span bytes, counted in Python, stored values (resource ids, status codes)
turned into the values shown.

SQLite's GROUP BY sorts every row through a temporary B-tree, which measured slower than
streaming the triples into Python lists and sorting each group there (docs/store-api.md).
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from o11ykit.store.analytics_filters import COLUMN_KEYS, Filters, column_value, resource_values
from o11ykit.store.analytics_results import COLUMN, RESOURCE, Group
from o11ykit.store.span_scan import scan, scanned_value, stand_ins


def shown_value(conn: sqlite3.Connection, key: str, source: str) -> Callable[[object], str | None]:
    """Stored group value (resource id, status code, text) -> the value shown."""
    if source == RESOURCE:
        return resource_values(conn, key).get
    if source == COLUMN:
        return lambda raw: column_value(key, raw)
    return lambda raw: str(raw)


def largest_first(groups: Iterable[Group]) -> list[Group]:
    return sorted(groups, key=lambda g: (-g.count, g.value is None, g.value or ""))


Triple = tuple[object, int, int]  # (raw group value, duration_ns, status_code)
Groups = dict[object, tuple[list[int], int]]  # raw value -> (durations, errors)


def sql_triples(
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


def scanned_triples(
    conn: sqlite3.Connection, filters: Filters, key: str, own_source: str
) -> tuple[list[Triple], bool]:
    spans, truncated = scan(conn, filters)
    resources = stand_ins(conn, key, own_source)
    return [
        (scanned_value(s, key, resources), s.duration_ns, s.status_code) for s in spans
    ], truncated


def aggregate(triples: Iterable[Triple]) -> Groups:
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


def merge(
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


def summarise(value: object, durations: list[int], errors: int) -> Group:
    durations.sort()
    ms = [percentile(durations, q) / 1_000_000 for q in (0.5, 0.95, 0.99)]
    return Group(None if value is None else str(value), len(durations), errors, *ms)
