"""How a catalogue signal's measure is computed from what the trace store answers (the
contract tests play the same measures on a running stack)."""

from __future__ import annotations

from datetime import datetime, timezone

from o11ykit.backends.jaeger_query import SpanView, Trace
from sample_app.faults.catalogue import Signal
from sample_app.faults.signals import measure

SALES_SQL = Signal("orders", "GET /sales", "slowest_sql_p50_ms", 6.0)
WINDOW = (
    datetime(2026, 12, 7, tzinfo=timezone.utc),
    datetime(2026, 12, 7, 0, 5, tzinfo=timezone.utc),
)


def _span(service: str, name: str, ms: float, **attributes: object) -> SpanView:
    return SpanView(
        trace_id="t", span_id=name, parent_span_id=None, service=service, name=name,
        kind="client" if attributes else "server", start_ns=0, end_ns=int(ms * 1e6),
        duration_ms=ms, status="unset", status_message="", attributes=attributes, resource={},
    )  # fmt: skip


class _Store:
    def __init__(self, traces: list[Trace]) -> None:
        self.traces = traces
        self.asked: list[tuple] = []

    def find_traces(self, service, operation, **options):
        self.asked.append((service, operation, options["search_depth"]))
        return self.traces


def test_slowest_sql_p50_is_the_median_over_traces_of_each_one_s_slowest_statement() -> None:
    def trace(n: int, *statements: float) -> Trace:
        return Trace(
            f"t{n}",
            [
                _span("orders", "GET /sales", 100.0),  # the request: not a statement
                *(
                    _span("orders", f"SELECT {i}", ms, **{"db.system.name": "sqlite"})
                    for i, ms in enumerate(statements)
                ),
                _span("gateway", "SELECT x", 900.0, **{"db.system.name": "sqlite"}),  # elsewhere
            ],
        )

    # The slowest of each: 1, 2, 30, 31, 32, 33, 34 -> the median is 31, whatever the fast
    # statements beside the slow ones.
    traces = [trace(0, 1.0), trace(1, 0.1, 2.0), trace(2, 30.0, 0.2)]
    traces += [trace(n, 0.1, ms) for n, ms in enumerate([31.0, 32.0, 33.0, 34.0], start=3)]
    traces.append(Trace("no-sql", [_span("orders", "GET /sales", 5.0)]))
    store = _Store(traces)
    measured = measure(store, SALES_SQL, *WINDOW)
    assert store.asked == [("orders", "GET /sales", 200)]
    assert (measured.value, measured.samples) == (31.0, 7)  # traces with a statement
    assert measured.present and not measured.absent


def test_slowest_sql_p50_without_statements_says_nothing() -> None:
    measured = measure(
        _Store([Trace("t", [_span("orders", "GET /sales", 5.0)])]), SALES_SQL, *WINDOW
    )
    assert (measured.value, measured.samples) == (None, 0)
    assert not measured.conclusive
