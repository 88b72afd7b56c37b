"""What breakdown and compare return, and the selection compare is asked about.

Plain values with `to_dict()` in the shape the HTTP endpoints answer (docs/store-api.md);
AnalyticsError for a parameter the store cannot answer for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from o11ykit.store.schema import PERCENTILE_ERROR
from o11ykit.timeformats import MAX_NS, format_duration

STATUS_LABELS = {0: "unset", 1: "ok", 2: "error"}
KIND_LABELS = {
    0: "unspecified",
    1: "internal",
    2: "server",
    3: "client",
    4: "producer",
    5: "consumer",
}


COLUMN, INDEXED, RESOURCE, SPAN_BYTES = (
    "span column",
    "indexed span attribute",
    "resource attribute",
    "span bytes",
)


class AnalyticsError(ValueError):
    """A parameter the store cannot answer for; the message names it and what it accepts."""


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


# An error span none of whose children failed (Selection.origin_errors). CASE, so only an
# error span looks for its children, through the trace-id index; a NOT of it selects the rest.
ORIGIN_ERROR = (
    "CASE WHEN s.status_code = 2 THEN NOT EXISTS (SELECT 1 FROM spans c"
    " WHERE c.trace_id = s.trace_id AND c.parent_span_id = s.span_id AND c.status_code = 2)"
    " ELSE 0 END"
)


@dataclass(frozen=True)
class Selection:
    """Which spans are compared against the rest: the errors, the errors where they began,
    or those slower than a bound."""

    kind: str  # "errors", "origin-errors" or "slower"
    threshold_ms: float | None = None

    @classmethod
    def errors(cls) -> Selection:
        return cls("errors")

    @classmethod
    def origin_errors(cls) -> Selection:
        """The error spans none of whose children failed: where each failure began. A
        failure marks every span it passes through on its way back to the edge (a server
        span answering 500, the client span that got it, the caller's server span), so
        among all errors the callers' attributes outnumber the cause's own."""
        return cls("origin-errors")

    @classmethod
    def slower_than(cls, milliseconds: float) -> Selection:
        if not milliseconds >= 0:
            raise AnalyticsError(f"a slower-than bound must be at least 0 ms, got {milliseconds:g}")
        return cls("slower", float(milliseconds))

    def describe(self) -> str:
        """The selection in words: errors, errors where they began, or slower than 250ms (the
        bound as a Go duration)."""
        if self.kind == "errors":
            return "errors"
        if self.kind == "origin-errors":
            return "errors where they began"
        return f"slower than {format_duration(self.threshold_ns)}"

    @property
    def rolled_up(self) -> bool:
        """Whether rollups can count this selection: they hold each value's errors and
        durations, not which spans are a failed span's parent."""
        return self.kind != "origin-errors"

    def sql(self) -> tuple[str, list[object]]:
        if self.kind == "errors":
            return "s.status_code = 2", []
        if self.kind == "origin-errors":
            return ORIGIN_ERROR, []
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
