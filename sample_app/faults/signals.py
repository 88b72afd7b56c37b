"""Checking a catalogue signal against a trace store, through the Jaeger API v3 client
and the local store's breakdown. Contract tests and the stack benchmark use it; lab
solvers do not (they must find the answer without being told where to look)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

from o11ykit.backends.jaeger_query import JaegerQuery, Trace
from sample_app.faults.catalogue import Signal

# Below this many samples a window says nothing either way.
MIN_SAMPLES = 6
# Latencies under this are noise for a growth ratio (a 2 ms page doubling to 4 ms is not
# degradation; one going from 20 ms to 200 ms is).
GROWTH_FLOOR_MS = 10.0


@dataclass(frozen=True)
class Measurement:
    signal: Signal
    value: float | None
    samples: int

    @property
    def conclusive(self) -> bool:
        return self.value is not None and self.samples >= MIN_SAMPLES

    @property
    def present(self) -> bool:
        return self.conclusive and self.value >= self.signal.threshold  # type: ignore[operator]

    @property
    def absent(self) -> bool:
        return self.conclusive and self.value < self.signal.threshold  # type: ignore[operator]

    def describe(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:.3g}"
        return (
            f"{self.signal.measure} of {self.signal.service} {self.signal.operation!r} "
            f"{self.signal.where or ''} = {shown} (threshold {self.signal.threshold:g}, "
            f"{self.samples} samples)"
        )


def _group(client: JaegerQuery, signal: Signal, start: datetime, end: datetime) -> dict | None:
    answer = client.breakdown(
        "service.name",
        start=start,
        end=end,
        service=signal.service,
        operation=signal.operation,
        where=signal.where or None,
    )
    groups = answer.get("groups") or []
    return groups[0] if groups else None


def _traces(client: JaegerQuery, signal: Signal, start: datetime, end: datetime) -> list[Trace]:
    return client.find_traces(
        signal.service,
        signal.operation,
        start=start,
        end=end,
        attributes=signal.where or None,
        search_depth=200,
    )


def _sql_durations(trace: Trace, service: str) -> list[float]:
    """The durations of the service's SQL spans (those with db.* attributes), in ms."""
    return [
        s.duration_ms
        for s in trace.spans
        if s.service == service and any(k.startswith("db.") for k in s.attributes)
    ]


def _sql_spans(trace: Trace, service: str) -> int:
    return len(_sql_durations(trace, service))


def _payment_calls(trace: Trace, service: str) -> int:
    return sum(
        1
        for s in trace.spans
        if s.service == service
        and s.kind == "client"
        and "/charges" in str(s.attributes.get("url.full", s.attributes.get("http.url", "")))
    )


_GROUP_FIELDS = {"error_rate": "errorRate", "p50_ms": "p50Ms", "p95_ms": "p95Ms"}


def measure(client: JaegerQuery, signal: Signal, start: datetime, end: datetime) -> Measurement:
    kind = signal.measure
    if kind in _GROUP_FIELDS:
        group = _group(client, signal, start, end)
        if group is None:
            return Measurement(signal, None, 0)
        value = group[_GROUP_FIELDS[kind]]
        return Measurement(signal, float(value), int(group["count"]))
    if kind in ("sql_per_trace", "calls_per_trace"):
        traces = _traces(client, signal, start, end)
        count = _sql_spans if kind == "sql_per_trace" else _payment_calls
        values = [count(t, signal.service) for t in traces]
        return Measurement(signal, float(max(values)) if values else None, len(values))
    if kind == "slowest_sql_p50_ms":
        # Each trace's slowest statement, without the request's own time: a slow query
        # stands out the same on a fast machine as on a slow one, where the request's
        # fixed cost moves with the machine. The median of them over the traces.
        traces = _traces(client, signal, start, end)
        slowest = [max(d) for t in traces if (d := _sql_durations(t, signal.service))]
        return Measurement(signal, statistics.median(slowest) if slowest else None, len(slowest))
    if kind == "zero_results":
        answer = client.breakdown(
            "app.search.results",
            start=start,
            end=end,
            service=signal.service,
            operation=signal.operation,
            where=signal.where or None,
            limit=1000,
        )
        total = int(answer.get("total") or 0)
        zero = sum(g["count"] for g in answer.get("groups") or [] if g["value"] == "0")
        return Measurement(signal, zero / total if total else None, total)
    if kind == "growth":
        # The p50 of the window's last third against its first, each from a breakdown: all
        # their spans, where a search reads only the newest traces (200 of them were all on
        # the plateau by a lab's seventh minute, and the growth read 1.02).
        third = (end - start) / 3
        early = _group(client, signal, start, start + third)
        late = _group(client, signal, end - third, end)
        counts = [int(g["count"]) if g else 0 for g in (early, late)]
        if early is None or late is None or min(counts) < MIN_SAMPLES // 2:
            return Measurement(signal, None, sum(counts))
        ratio = float(late["p50Ms"]) / max(float(early["p50Ms"]), GROWTH_FLOOR_MS)
        return Measurement(signal, ratio, sum(counts))
    raise ValueError(f"unknown measure {kind!r} in the catalogue")
