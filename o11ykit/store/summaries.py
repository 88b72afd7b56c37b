"""Trace summaries: `GET /api/v3/trace-summaries`, what a search results page shows.

Jaeger v2 answers the same search as FindTraces with one lightweight summary a trace
(its root, time span, span and error counts, spans whose parent is missing, and a count a
service) instead of every span. The summary is computed as Jaeger's `summarizeTrace`
computes it (querysvc/summary.go): the root is the earliest span without a parent, an
orphan a span whose parent is not in the trace, an error a span whose status is ERROR.
It is read from the span columns alone, so no span bytes are decoded.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass

STATUS_ERROR = 2  # OTLP StatusCode ERROR


@dataclass(frozen=True)
class ServiceSummary:
    name: str
    span_count: int
    error_span_count: int

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "spanCount": self.span_count,
            "errorSpanCount": self.error_span_count,
        }


@dataclass(frozen=True)
class TraceSummary:
    trace_id: bytes
    root_service_name: str
    root_operation_name: str
    min_start_ns: int
    max_end_ns: int
    span_count: int
    error_span_count: int
    orphan_span_count: int
    services: list[ServiceSummary]  # sorted by name

    def to_dict(self) -> dict[str, object]:
        """As Jaeger's OpenAPI document shapes api_v3.TraceSummary (64-bit times as text)."""
        return {
            "traceId": self.trace_id.hex(),
            "rootServiceName": self.root_service_name,
            "rootOperationName": self.root_operation_name,
            "minStartTimeUnixNano": str(self.min_start_ns),
            "maxEndTimeUnixNano": str(self.max_end_ns),
            "spanCount": self.span_count,
            "errorSpanCount": self.error_span_count,
            "orphanSpanCount": self.orphan_span_count,
            "services": [service.to_dict() for service in self.services],
        }


# (span_id, parent_span_id, service, name, start_ns, duration_ns, status_code)
SpanColumns = tuple[bytes, bytes | None, str, str, int, int, int]


def trace_summaries(connection: sqlite3.Connection, trace_ids: list[bytes]) -> list[TraceSummary]:
    """One summary a trace, in the order of `trace_ids` (a search's: newest first)."""
    if not trace_ids:
        return []
    spans: dict[bytes, list[SpanColumns]] = {trace_id: [] for trace_id in trace_ids}
    marks = ", ".join("?" * len(trace_ids))
    rows = connection.execute(
        "SELECT trace_id, span_id, parent_span_id, service, name, start_ns, duration_ns,"
        f" status_code FROM spans WHERE trace_id IN ({marks}) ORDER BY start_ns, id",
        trace_ids,
    )
    for trace_id, *columns in rows:
        spans[trace_id].append(tuple(columns))  # type: ignore[arg-type]
    return [summarize(trace_id, found) for trace_id, found in spans.items() if found]


def summarize(trace_id: bytes, spans: list[SpanColumns]) -> TraceSummary:
    """The summary of one trace's spans, given in start order (the root is the first)."""
    ids = {span[0] for span in spans}
    counts: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    root: SpanColumns | None = None
    orphans = 0
    for span in spans:
        _, parent, service, _, _, _, status = span
        counts[service] += 1
        errors[service] += status == STATUS_ERROR
        if parent is None:
            root = root or span  # the earliest: spans come in start order
        elif parent not in ids:
            orphans += 1
    return TraceSummary(
        trace_id=trace_id,
        root_service_name=root[2] if root else "",
        root_operation_name=root[3] if root else "",
        min_start_ns=min(span[4] for span in spans),
        max_end_ns=max(span[4] + span[5] for span in spans),
        span_count=len(spans),
        error_span_count=sum(errors.values()),
        orphan_span_count=orphans,
        services=[ServiceSummary(name, counts[name], errors[name]) for name in sorted(counts)],
    )
