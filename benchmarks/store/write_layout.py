"""What the index layout costs the store's writer: time and WAL a span, layouts side by side.

Run from the repository root:  ``.venv/bin/python -m benchmarks.store.write_layout``

The spans are the ones the benchmark's exporter client sends (``client.py``: SDK-made traces
of 4 spans, encoded by the SDK's own OTLP encoder), decoded once, then written with
``Store.write_group`` in groups of ``writer.GROUP_SPANS`` into a fresh store for each layout,
the layouts in turn and in reverse order on alternate rounds:

- ``key-first``: the span attribute index as it was until schema 4, (key, value, span);
- ``block-led``: the layout the store creates now, (span_id >> 12, key, value);
- ``block-led, trace too``: also the trace-id index led by the block (not built: see
  docs/store.md for why).

Automatic checkpoints are off, so the WAL file ends holding every page each commit wrote:
WAL bytes a span is the write volume, the same on every run. Time is the wall clock of the
writes alone (no decoding, no HTTP), in this one process. Results go to
``results-write-layout-latest.json`` next to this file (or ``--results``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, run_and_record
from benchmarks.store import client
from o11ykit.store.batches import Batch, batch_from_request
from o11ykit.store.decode import parse_protobuf
from o11ykit.store.ingest import Store
from o11ykit.store.schema import DATABASE_NAME
from o11ykit.store.writer import GROUP_SPANS

HERE = Path(__file__).resolve().parent
RESULTS_FILE = HERE / "results-write-layout-latest.json"
KEY_FIRST = (
    "DROP INDEX span_attributes_block_kv;"
    " CREATE INDEX span_attributes_kv ON span_attributes(key, value, span_id);"
)
TRACE_BLOCK_LED = "DROP INDEX spans_trace; CREATE INDEX spans_trace ON spans(id >> 12, trace_id);"
LAYOUTS = {"key-first": KEY_FIRST, "block-led": "", "block-led, trace too": TRACE_BLOCK_LED}


def exporter_batches(seeds: int) -> list[Batch]:
    """The exporter client's 512-span batches, for `seeds` clients, decoded by the store."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    batches = []
    for seed in range(1, seeds + 1):
        made = InMemorySpanExporter()
        provider = client._provider()
        provider.add_span_processor(SimpleSpanProcessor(made))
        tracer = provider.get_tracer("benchmarks.store.write_layout", "1")
        rng = random.Random(seed)
        created = 0
        while created < client.EXPORTER_BATCHES * client.EXPORT_BATCH_SPANS:
            created += client._one_trace(tracer, rng)
        spans = made.get_finished_spans()
        for i in range(0, len(spans), client.EXPORT_BATCH_SPANS):
            body = encode_spans(spans[i : i + client.EXPORT_BATCH_SPANS]).SerializeToString()
            batches.append(batch_from_request(parse_protobuf(body)))
    return batches


def write_round(directory: Path, layout: str, batches: list[Batch], spans: int) -> dict[str, Any]:
    store = Store(directory)
    try:
        store.connection.execute("PRAGMA wal_autocheckpoint=0")
        store.connection.execute("PRAGMA journal_size_limit=-1")
        if LAYOUTS[layout]:
            store.connection.executescript(LAYOUTS[layout])
        per_group = max(1, GROUP_SPANS // client.EXPORT_BATCH_SPANS)
        written = turn = 0
        started = time.perf_counter()
        while written < spans:
            group = [batches[(turn + k) % len(batches)] for k in range(per_group)]
            written += store.write_group(group)
            turn += per_group
        seconds = time.perf_counter() - started
        wal = (directory / f"{DATABASE_NAME}-wal").stat().st_size
    finally:
        store.close()
    return {
        "spans": written,
        "us_per_span": seconds / written * 1e6,
        "wal_bytes_per_span": wal / written,
    }


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    batches = exporter_batches(args.clients)
    rounds: dict[str, list[dict[str, Any]]] = {layout: [] for layout in LAYOUTS}
    for n in range(args.rounds):
        order = list(LAYOUTS) if n % 2 == 0 else list(reversed(LAYOUTS))
        for layout in order:
            result = write_round(work / f"{n}-{order.index(layout)}", layout, batches, args.spans)
            rounds[layout].append(result)
            print(
                f"round {n + 1} {layout}: {result['us_per_span']:.1f} µs a span,"
                f" WAL {result['wal_bytes_per_span']:.0f} B a span",
                flush=True,
            )
    summary = {
        layout: {
            "median_us_per_span": statistics.median(r["us_per_span"] for r in results),
            "wal_bytes_per_span": statistics.median(r["wal_bytes_per_span"] for r in results),
        }
        for layout, results in rounds.items()
    }
    return {"rounds": rounds, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000, help="spans written a store")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2, help="exporter clients' batches")
    parser.add_argument("--dir", type=Path, help="parent of the work directory")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--results", type=Path, default=RESULTS_FILE)
    args = parser.parse_args(argv)
    report = run_and_record(
        "benchmarks.store.write_layout",
        args,
        measure,
        described={"environment": machine(["protobuf", "opentelemetry-sdk"])},
    )
    base = report["summary"]["key-first"]["median_us_per_span"]
    print(f"\n{'layout':<24}{'µs a span (median)':>20}{'ratio':>8}{'WAL B a span':>14}")
    for layout, figures in report["summary"].items():
        print(
            f"{layout:<24}{figures['median_us_per_span']:>20.1f}"
            f"{figures['median_us_per_span'] / base:>8.2f}{figures['wal_bytes_per_span']:>14.0f}"
        )
    print(f"\nwritten to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
