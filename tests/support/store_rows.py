"""Rows for the local store, written straight into SQLite exactly as schema.py lays them out.

Tests of the analytics build a store with known ground truth without going through ingest:
each span is stored whole as real OTLP `Span` bytes, its indexed attributes are copied into
span_attributes and its resource is deduplicated by digest, as ingest does.

Run as a module it builds a large store and times breakdown and compare against it::

    python -m tests.support.store_rows /tmp/o11ykit-bench --spans 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sqlite3
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from o11ykit.store.batches import value_text
from o11ykit.store.ingest import Store
from o11ykit.store.schema import INDEXED_SPAN_KEYS, open_database

SERVER, CLIENT = 2, 3
UNSET, OK, ERROR = 0, 1, 2
MS = 1_000_000


@dataclass
class SpanRow:
    service: str
    name: str
    start_ns: int
    duration_ns: int
    status_code: int = UNSET
    kind: int = SERVER
    attributes: dict[str, object] = field(default_factory=dict)
    resource: dict[str, str] = field(default_factory=dict)  # besides service.name
    trace_id: bytes | None = None
    span_id: bytes | None = None
    parent_span_id: bytes | None = None
    status_message: str = ""


def any_value(value: object) -> common_pb2.AnyValue:
    if isinstance(value, bool):
        return common_pb2.AnyValue(bool_value=value)
    if isinstance(value, int):
        return common_pb2.AnyValue(int_value=value)
    if isinstance(value, float):
        return common_pb2.AnyValue(double_value=value)
    return common_pb2.AnyValue(string_value=str(value))


def text(value: object) -> str:
    """An attribute value as span_attributes stores it (ingest's own conversion)."""
    return value_text(any_value(value))


def key_values(attributes: dict[str, object]) -> list[common_pb2.KeyValue]:
    return [common_pb2.KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()]


def span_bytes(row: SpanRow, trace_id: bytes, span_id: bytes) -> bytes:
    span = trace_pb2.Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=row.parent_span_id or b"",
        name=row.name,
        kind=row.kind,
        start_time_unix_nano=row.start_ns,
        end_time_unix_nano=row.start_ns + row.duration_ns,
        attributes=key_values(row.attributes),
        status=trace_pb2.Status(code=row.status_code, message=row.status_message),
    )
    return span.SerializeToString()


class StoreWriter:
    """Inserts spans, resources, one scope and indexed attributes; ids as SQLite assigns them."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self._resources: dict[bytes, int] = {}
        scope = common_pb2.InstrumentationScope(name="tests.store_rows").SerializeToString()
        connection.execute(
            "INSERT OR IGNORE INTO scopes(digest, scope) VALUES (?, ?)",
            (hashlib.sha256(scope).digest(), scope),
        )
        self.scope_id = connection.execute(
            "SELECT id FROM scopes WHERE digest = ?", (hashlib.sha256(scope).digest(),)
        ).fetchone()[0]

    def resource_id(self, service: str, attributes: dict[str, str]) -> int:
        merged = {"service.name": service, **attributes}
        encoded = resource_pb2.Resource(attributes=key_values(merged)).SerializeToString()
        digest = hashlib.sha256(encoded).digest()
        known = self._resources.get(digest)
        if known is not None:
            return known
        cursor = self.connection.execute(
            "INSERT INTO resources(digest, service, attributes, resource) VALUES (?, ?, ?, ?)",
            (digest, service, json.dumps(merged, sort_keys=True), encoded),
        )
        rid = self._resources[digest] = cursor.lastrowid
        self.connection.executemany(
            "INSERT INTO resource_attributes(resource_id, key, value) VALUES (?, ?, ?)",
            [(rid, k, v) for k, v in merged.items()],
        )
        return rid

    def add_many(self, rows: Iterable[SpanRow]) -> list[int]:
        """One transaction; returns the spans' row ids."""
        ids = []
        with self.connection:
            self.connection.execute("BEGIN")
            for row in rows:
                ids.append(self._add(row))
        return ids

    def _add(self, row: SpanRow) -> int:
        trace_id = row.trace_id or os.urandom(16)
        span_id = row.span_id or os.urandom(8)
        cursor = self.connection.execute(
            "INSERT INTO spans(trace_id, span_id, parent_span_id, service, name, kind, start_ns,"
            " duration_ns, status_code, resource_id, scope_id, span)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                trace_id,
                span_id,
                row.parent_span_id,
                row.service,
                row.name,
                row.kind,
                row.start_ns,
                row.duration_ns,
                row.status_code,
                self.resource_id(row.service, row.resource),
                self.scope_id,
                span_bytes(row, trace_id, span_id),
            ),
        )
        indexed = [k for k in row.attributes if k in INDEXED_SPAN_KEYS]
        self.connection.executemany(
            "INSERT INTO span_attributes(span_id, key, value) VALUES (?, ?, ?)",
            [(cursor.lastrowid, k, text(row.attributes[k])) for k in indexed],
        )
        self.connection.executemany(
            "INSERT OR IGNORE INTO span_attribute_keys(key) VALUES (?)", [(k,) for k in indexed]
        )
        return cursor.lastrowid


# --------------------------------------------------------------------------------------------
# A large store for timing (executemany, a few template span bodies: the bytes are only
# read by the decode path, which the timings below do not exercise)
# --------------------------------------------------------------------------------------------

BENCH_START_NS = 1_700_000_000 * 1_000_000_000
BENCH_SPACING_NS = 3_600 * 1_000_000_000 // 1_000_000  # 1M spans over one hour
TENANTS = [f"tenant-{i:02d}" for i in range(40)]
ROUTES = [f"/api/v1/thing{i}/{{id}}" for i in range(25)]


def build_large_store(directory: Path, spans: int, seed: int = 7) -> None:
    connection = open_database(directory)
    writer = StoreWriter(connection)
    rng = random.Random(seed)
    resources = [
        writer.resource_id(f"svc-{s}", {"service.version": v, "host.name": f"h{s}"})
        for s in range(8)
        for v in ("1.0", "2.0")
    ]
    body = span_bytes(SpanRow("svc", "GET /x", BENCH_START_NS, MS), os.urandom(16), os.urandom(8))
    batch = 50_000
    for first in range(0, spans, batch):
        span_rows, attribute_rows = [], []
        for i in range(first, min(first + batch, spans)):
            rid = rng.choice(resources)
            error = rng.random() < 0.02
            span_rows.append(
                (
                    i + 1,
                    os.urandom(16),
                    os.urandom(8),
                    None,
                    f"svc-{(rid - resources[0]) // 2}",
                    rng.choice(ROUTES[:8]),
                    SERVER,
                    BENCH_START_NS + i * BENCH_SPACING_NS,
                    int(rng.lognormvariate(16, 1)),
                    ERROR if error else OK,
                    rid,
                    writer.scope_id,
                    body,
                )
            )
            attribute_rows += [
                (i + 1, "tenant.id", rng.choice(TENANTS)),
                (i + 1, "http.route", rng.choice(ROUTES)),
                (i + 1, "http.request.method", rng.choice(("GET", "POST"))),
                (i + 1, "http.response.status_code", "500" if error else "200"),
            ]
        with connection:
            connection.execute("BEGIN")
            connection.executemany(
                "INSERT INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", span_rows
            )
            connection.executemany("INSERT INTO span_attributes VALUES (?, ?, ?)", attribute_rows)
            connection.executemany(
                "INSERT OR IGNORE INTO span_attribute_keys(key) VALUES (?)",
                [(key,) for key in {row[1] for row in attribute_rows}],
            )
    # Opening the writer rolls up the spans written around it, as after an upgrade (~13 s).
    Store(directory).close()
    connection.execute("ANALYZE")
    connection.close()


def _timed(call, repeat: int) -> tuple[float, float]:
    """p50 and p95 wall time in ms over `repeat` runs (after one warm-up run)."""
    call()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def main() -> None:
    from o11ykit.store import analytics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    if not (args.directory / "traces.db").exists():
        began = time.perf_counter()
        build_large_store(args.directory, args.spans)
        print(f"built {args.spans} spans in {time.perf_counter() - began:.1f} s")
    connection = open_database(args.directory, readonly=True)
    end = BENCH_START_NS + args.spans * BENCH_SPACING_NS
    for label, minutes in (("5 min", 5), ("15 min", 15), ("1 hour (all)", 60)):
        start = end - minutes * 60 * 1_000_000_000
        cases = {
            "breakdown tenant.id": lambda s=start: analytics.breakdown(
                connection, group_by="tenant.id", start_ns=s, end_ns=end
            ),
            "breakdown service.version": lambda s=start: analytics.breakdown(
                connection, group_by="service.version", start_ns=s, end_ns=end
            ),
            "breakdown name, service=svc-3": lambda s=start: analytics.breakdown(
                connection, group_by="name", start_ns=s, end_ns=end, service="svc-3"
            ),
            "compare errors": lambda s=start: analytics.compare(
                connection, start_ns=s, end_ns=end, selection=analytics.Selection.errors()
            ),
            "compare slower_than 20ms": lambda s=start: analytics.compare(
                connection,
                start_ns=s,
                end_ns=end,
                selection=analytics.Selection.slower_than(20.0),
            ),
        }
        for name, call in cases.items():
            p50, p95 = _timed(call, args.repeat)
            print(f"{label:>13}  {name:<32} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms")


if __name__ == "__main__":
    main()
