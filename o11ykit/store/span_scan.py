"""Reading the spans of a window through their stored OTLP bytes: for keys no index holds.
Newest first, at most SCAN_LIMIT spans decoded (~10 µs each); the caller says when that
cut the window short (`truncated_note`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from opentelemetry.proto.trace.v1 import trace_pb2

from o11ykit.store.analytics_filters import COLUMN_KEYS, Filters, column_value, resource_values
from o11ykit.store.analytics_results import RESOURCE, SPAN_BYTES
from o11ykit.store.batches import value_text  # the text ingest stores: one definition
from o11ykit.store.queries import carries_keys

# Spans decoded at most when a key is read from the stored span bytes (~10 µs each).
SCAN_LIMIT = 20_000


@dataclass
class ScannedSpan:
    service: str
    name: str
    kind: int
    status_code: int
    duration_ns: int
    resource_id: int
    attributes: dict[str, str | None]
    selected: bool


def scan(
    conn: sqlite3.Connection, filters: Filters, chosen: str = "0", chosen_args: Iterable = ()
) -> tuple[list[ScannedSpan], bool]:
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
    resources = {key: resource_values(conn, key) for key in filters.decoded}
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
            spans.append(ScannedSpan(*columns, attributes, bool(selected)))
    return spans, truncated


def truncated_note() -> str:
    """The note of a result whose span-bytes read stopped at SCAN_LIMIT."""
    return f"read from span bytes: only the newest {SCAN_LIMIT} matching spans were examined"


def scanned_value(span: ScannedSpan, key: str, resources: dict[int, str]) -> str | None:
    if key in COLUMN_KEYS:
        raw = {
            "service.name": span.service,
            "name": span.name,
            "status": span.status_code,
            "kind": span.kind,
        }[key]
        return column_value(key, raw)
    if key in span.attributes:
        return span.attributes[key]
    return resources.get(span.resource_id)


def stand_ins(conn: sqlite3.Connection, key: str, own_source: str) -> dict[int, str]:
    """Resource id -> the value a span without `key` of its own is grouped under, read from
    its resource. Not for an indexed key: the index, the rollups and the statements read
    spans' own values only, and a span read from its bytes is grouped as they group it."""
    return resource_values(conn, key) if own_source in (RESOURCE, SPAN_BYTES) else {}
