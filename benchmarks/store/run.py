"""Local trace store benchmark: ingest rate, bytes per span, query latency, start time, memory.

Run from the repository root:  ``.venv/bin/python -m benchmarks.store.run``

Every store runs as its own process (``o11ykit.store.process.spawn_store``, free ports on
127.0.0.1). Phases, in order:

1. sustained ingest into a fresh store, with ``--clients`` processes of each client mode:
   the SDK's OTLP/HTTP exporter sending spans the SDK made beforehand (the target's figure),
   ``--ingest-rounds`` times, alternating with the same clients sending to the bare receiver
   (``bare_receiver.py``, the least a receiver into SQLite can do: the yardstick of what the
   machine allows that day); then once each a whole SDK pipeline creating spans as it goes,
   and pre-encoded bodies (the store's ceiling); spans stored per second counted in the
   database at the start and end of the interval;
2. a store filled in-process with ``--spans`` synthetic spans (``synthetic.fill``), then its
   size on disk after a checkpoint;
3. start to ready: empty store and the full store alternately, ``--spawns`` times each;
4. query latency over HTTP against the full store, each query in turn, ``--repeat`` rounds
   after a warm-up; the store's RSS before and after;
5. a fresh store fed by ``--clients`` clients sending new synthetic traces until it holds
   ``--spans`` spans (or time runs out): its RSS then, for a store that ingested what it
   holds, and its ingest rate in the first and last 10 s.

It prints a table and writes ``results-latest.json`` next to this file (or ``--results``).
Everything is under one temp dir, removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from benchmarks.common import (
    REPO_ROOT,
    machine,
    phase,
    run_and_record,
    target_mark,
)
from o11ykit.store import synthetic
from o11ykit.store.ingest import Store
from o11ykit.store.process import StoreProcess, spawn_store
from o11ykit.store.schema import DATABASE_NAME
from o11ykit.timeformats import format_time

HERE = Path(__file__).resolve().parent
RESULTS_FILE = HERE / "results-latest.json"
GB = 10**9
MINUTE_NS = 60 * 10**9
CLIENT_READY_TIMEOUT = 60.0
CLIENT_STOP_TIMEOUT = 30.0
# Client modes (benchmarks/store/client.py), in the order they run; the target is judged on
# the first: the SDK's own exporter sending, with span creation not sharing the two cores.
INGEST_MODES = ("exporter", "sdk", "raw")
INGEST_LABELS = {
    "exporter": "SDK OTLPSpanExporter, spans made beforehand",
    "sdk": "SDK pipeline creating spans as it sends",
    "raw": "pre-encoded 512-span POSTs",
}
TARGETS = {
    "ingest_exporter_spans_per_s": 20_000,
    "query_p95_ms": 200,  # (a) attribute search and (c) breakdowns
    "start_s": 1.0,
    "rss_mb": 150,
}
# The ingest rounds with the exporter clients, by receiver, in the order of the first round.
RECEIVERS = ("store", "bare")
RECEIVER_NAMES = {"store": "store", "bare": "bare receiver"}
READY_TIMEOUT = 30.0
# Measured on other machines by others, quoted for comparison only; see the README.
ELSEWHERE = [
    {"what": "Arize Phoenix", "spans_per_s": 140, "start_s": 14.0, "rss_mb": 450},
    {"what": "autotel-devtools (Node 22)", "spans_per_s": 3600, "start_s": 0.3, "rss_mb": 78},
]


# ------------------------------------------------------------------------------ process facts


def proc_memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MB (10^6 bytes)."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) * 1024 / 1e6
    return {"rss_mb": found["VmRSS"], "peak_rss_mb": found["VmHWM"]}


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (utime and stime of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the name in parentheses may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stored_spans(directory: Path) -> int:
    """Committed spans, read through a read-only connection as any reader would see them.

    max(id), not count(*): ids are assigned 1, 2, 3 ... and these stores never evict, so it
    is the count, read from the end of the primary key instead of a scan.
    """
    connection = sqlite3.connect(f"file:{directory / DATABASE_NAME}?mode=ro", uri=True)
    try:
        return int(connection.execute("SELECT coalesce(max(id), 0) FROM spans").fetchone()[0])
    finally:
        connection.close()


def disk_usage(directory: Path, spans: int) -> dict[str, Any]:
    """Checkpoint the WAL into the main file, then size traces.db + -wal + -shm."""
    connection = sqlite3.connect(directory / DATABASE_NAME)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    files = [directory / f"{DATABASE_NAME}{suffix}" for suffix in ("", "-wal", "-shm")]
    stats = [f.stat() for f in files if f.exists()]
    apparent = sum(s.st_size for s in stats)
    allocated = sum(s.st_blocks * 512 for s in stats)
    return {
        "spans": spans,
        "bytes": apparent,
        "allocated_bytes": allocated,
        "bytes_per_span": apparent / max(1, spans),
    }


# How each store stop went: the store sometimes ignores SIGTERM (see the README) and
# StoreProcess.stop then kills it after its 10 s timeout, which the report must show.
STOPS: list[dict[str, Any]] = []


@contextlib.contextmanager
def store_process(directory: Path) -> Iterator[StoreProcess]:
    store = spawn_store(directory, http_port=0, grpc_port=0, query_port=0, startup_timeout=60)
    try:
        yield store
    finally:
        # Let handler threads of just-closed connections end first: a SIGTERM delivered to
        # one of them, rather than to the main thread, is what the store misses.
        time.sleep(0.2)
        started = time.monotonic()
        code = store.stop()
        STOPS.append({"seconds": round(time.monotonic() - started, 3), "returncode": code})


class BareReceiver:
    """A running bare_receiver.py, with what ingest rounds read of a store: pid, traces_url."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.pid = process.pid
        self.traces_url = f"http://127.0.0.1:{port}/v1/traces"


@contextlib.contextmanager
def bare_process(directory: Path) -> Iterator[BareReceiver]:
    ready = directory.with_name(f"{directory.name}.port")
    ready.unlink(missing_ok=True)  # an earlier round's port: that receiver is gone
    command = [sys.executable, "-m", "benchmarks.store.bare_receiver"]
    command += ["--dir", str(directory), "--ready", str(ready)]
    with directory.with_name(f"{directory.name}.log").open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not (ready.exists() and ready.read_text()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bare receiver did not start; see {log.name}")
            time.sleep(0.02)
        yield BareReceiver(process, int(ready.read_text()))
    finally:
        _stop_processes([process])


def ports_accepting(store: StoreProcess) -> bool:
    ports = [store.http_port, store.query_port] + ([store.grpc_port] if store.grpc_port else [])
    for port in ports:
        with socket.socket() as sock:
            sock.settimeout(2)
            try:
                sock.connect(("127.0.0.1", int(port)))
            except OSError:
                return False
    return True


# ------------------------------------------------------------------------------ 1. ingest


def _wait_for(path: Path, procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            raise RuntimeError(f"an ingest client did not get ready; see the logs near {path}")
        time.sleep(0.02)


def _stop_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # a client finishes its export and reports
    for proc in procs:
        try:
            proc.wait(CLIENT_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def feeding(
    work: Path, name: str, mode: str, clients: int, run_s: float, receiver: str = "store"
) -> Iterator[tuple[StoreProcess | BareReceiver, list[subprocess.Popen[bytes]]]]:
    """A fresh store (or bare receiver) `work/name` with `clients` of `mode` sending to it,
    every one ready.

    The clients are stopped on the way out (each writes its report, `work/<name>-<n>.json`);
    the receiver is still running then.
    """
    directory = work / name
    procs: list[subprocess.Popen[bytes]] = []
    server = store_process if receiver == "store" else bare_process
    with server(directory) as store:
        try:
            for n in range(clients):
                procs.append(_start_client(work, f"{name}-{n}", mode, n, store.traces_url, run_s))
            for n in range(clients):
                _wait_for(work / f"{name}-{n}.ready", procs, CLIENT_READY_TIMEOUT)
            yield store, procs
        finally:
            _stop_processes(procs)


def ingest_round(
    work: Path, mode: str, clients: int, seconds: float, warmup: float, receiver: str = "store"
) -> dict:
    """Clients send into a fresh store (or bare receiver); spans/s stored over the measured
    interval."""
    name = f"ingest-{mode}-{receiver}"
    directory = work / name
    with feeding(work, name, mode, clients, warmup + seconds, receiver) as (store, procs):
        time.sleep(warmup)
        measured = _measure_interval(directory, store.pid, procs, seconds)
        _stop_processes(procs)
        measured["store_memory"] = proc_memory_mb(store.pid)
    reports = [json.loads((work / f"{name}-{n}.json").read_text()) for n in range(clients)]
    # A round that stored nothing, or a bare receiver that refused a batch (it has no reason
    # to), would put a made-up figure in the report: say so instead.
    failed = sum(report["failed"] for report in reports)
    if measured["spans_stored"] == 0 or (receiver == "bare" and failed):
        raise RuntimeError(
            f"the {RECEIVER_NAMES[receiver]} stored {measured['spans_stored']} spans and the"
            f" clients saw {failed} failed batches; see the logs in {work}"
        )
    total = stored_spans(directory)
    shutil.rmtree(directory, ignore_errors=True)
    return {
        "mode": mode,
        "receiver": receiver,
        "clients": clients,
        **measured,
        "clients_report": reports,
        "stored_at_end": total,
    }


def exporter_summary(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """The store's median round (the one reported beside the other modes) and the medians of
    both receivers' rates, CPU and the round-by-round ratio store / bare. Each median is one
    round's figure (the lower of the middle two for an even count), so the store's median
    rate is the rate of the round reported."""
    by_rate = sorted(rounds, key=lambda r: r["store"]["spans_per_s"])
    median_round = by_rate[(len(by_rate) - 1) // 2]["store"]

    def median(receiver: str, figure: str) -> float:
        return statistics.median_low(r[receiver][figure] for r in rounds)

    summary = {
        "rounds": len(rounds),
        **{
            f"{receiver}_{figure}": median(receiver, figure)
            for receiver in RECEIVERS
            for figure in ("spans_per_s", "store_cpu_share", "clients_cpu_share")
        },
        "ratio_store_to_bare": statistics.median_low(
            r["store"]["spans_per_s"] / r["bare"]["spans_per_s"] for r in rounds
        ),
        "store_rounds_spans_per_s": [r["store"]["spans_per_s"] for r in rounds],
        "bare_rounds_spans_per_s": [r["bare"]["spans_per_s"] for r in rounds],
    }
    return {"store": median_round, "summary": summary}


def ingest_until(work: Path, spans: int, clients: int, timeout_s: float) -> dict[str, Any]:
    """A store fed fresh synthetic traces until it holds `spans`, and its memory then.

    The memory target is for a store holding 1M spans; the full store of the queries was
    filled in another process, so this is the figure for one that ingested them itself.
    Fresh traces (client mode `fresh`), not repeated bodies: see client.py.
    """
    name = "ingest-memory"
    directory = work / name
    with feeding(work, name, "fresh", clients, timeout_s) as (store, _):
        started = time.monotonic()
        # (seconds, spans held): how the rate holds up as the store grows.
        samples: list[tuple[float, int]] = []
        while (held := stored_spans(directory)) < spans:
            samples.append((time.monotonic() - started, held))
            if samples[-1][0] > timeout_s:
                break
            time.sleep(0.5)
        seconds = time.monotonic() - started
        memory = proc_memory_mb(store.pid)
    shutil.rmtree(directory, ignore_errors=True)
    samples.append((seconds, held))
    return {
        "spans": held,
        "wanted": spans,
        "seconds": seconds,
        "reached": held >= spans,
        "memory": memory,
        "first_10s_spans_per_s": _rate(samples, 0.0, 10.0),
        "last_10s_spans_per_s": _rate(samples, seconds - 10.0, seconds),
        "samples": samples,
    }


def _rate(samples: list[tuple[float, int]], start_s: float, end_s: float) -> float | None:
    """Spans stored a second between the samples nearest `start_s` and `end_s`."""
    inside = [(t, n) for t, n in samples if start_s <= t <= end_s]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    (t0, n0), (t1, n1) = inside[0], inside[-1]
    return (n1 - n0) / (t1 - t0)


def _start_client(
    work: Path, name: str, mode: str, n: int, url: str, run_s: float
) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.store.client",
        "--mode",
        mode,
        "--url",
        url,
        "--ready",
        str(work / f"{name}.ready"),
        "--out",
        str(work / f"{name}.json"),
        "--seed",
        str(n + 1),
        "--max-seconds",
        str(run_s + 60),
    ]
    # Clients inherit no OTEL_* settings from the caller's shell: they would change the setup.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    with (work / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _measure_interval(
    directory: Path, store_pid: int, procs: list[subprocess.Popen[bytes]], seconds: float
) -> dict[str, Any]:
    pids = [store_pid] + [p.pid for p in procs]
    cpu0 = [proc_cpu_seconds(pid) for pid in pids]
    start, count0 = time.monotonic(), stored_spans(directory)
    per_second: list[int] = []
    last = count0
    # One sample a second shows whether the rate held or sagged (a queue filling up).
    while (left := start + seconds - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        now = stored_spans(directory)
        per_second.append(now - last)
        last = now
    elapsed = time.monotonic() - start
    count1 = stored_spans(directory)
    cpu = [proc_cpu_seconds(pid) - c for pid, c in zip(pids, cpu0, strict=True)]
    return {
        "seconds": elapsed,
        "spans_stored": count1 - count0,
        "spans_per_s": (count1 - count0) / elapsed,
        "per_second_samples": per_second,
        "store_cpu_share": cpu[0] / elapsed,  # 1.0 = one core busy all the time
        "clients_cpu_share": sum(cpu[1:]) / elapsed,
    }


# ------------------------------------------------------------------------------ 2. fill


def fill(directory: Path, spans: int, window_minutes: float) -> dict[str, Any]:
    """Write the synthetic store in this process: ~20x faster than sending it over HTTP."""
    end_ns = time.time_ns()
    started = time.monotonic()
    store = Store(directory)
    try:
        written = synthetic.fill(
            store, spans=spans, seed=1, end_ns=end_ns, window_seconds=window_minutes * 60
        )
    finally:
        store.close()
    seconds = time.monotonic() - started
    return {
        "spans": written,
        "seconds": seconds,
        "spans_per_s": written / seconds,
        "end_ns": end_ns,
        "window_minutes": window_minutes,
    }


# ------------------------------------------------------------------------------ 3. start


def start_to_ready(work: Path, full: Path, spawns: int) -> dict[str, Any]:
    """Empty and full store alternately, so drift on the machine hits both alike."""
    times: dict[str, list[float]] = {"empty": [], "full": []}
    for n in range(spawns):
        empty = work / f"empty-{n}"
        for kind, directory in (("empty", empty), ("full", full)):
            started = time.perf_counter()
            with store_process(directory) as store:
                if not ports_accepting(store):
                    raise RuntimeError(f"{kind} store ready but a port refused a connection")
                times[kind].append(time.perf_counter() - started)
        shutil.rmtree(empty, ignore_errors=True)
    return {kind: _spread(values) | {"all_s": values} for kind, values in times.items()}


def _spread(values: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(values), "max_s": max(values), "min_s": min(values)}


# ------------------------------------------------------------------------------ 4. queries


def mid_tenant(directory: Path) -> tuple[str, int]:
    """The tenant at the median of the span counts: neither the head nor the tail."""
    connection = sqlite3.connect(f"file:{directory / DATABASE_NAME}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT value, count(*) FROM span_attributes WHERE key = 'tenant.id'"
            " GROUP BY value ORDER BY count(*) DESC"
        ).fetchall()
    finally:
        connection.close()
    tenant, count = rows[len(rows) // 2]
    return str(tenant), int(count)


def query_cases(filled: dict[str, Any], tenant: str) -> dict[str, str]:
    end = filled["end_ns"] + 10**9  # end is exclusive; the newest span starts just before
    start = filled["end_ns"] - int(filled["window_minutes"] * MINUTE_NS) - 10**9
    recent = filled["end_ns"] - 15 * MINUTE_NS
    whole = {"query.startTimeMin": format_time(start), "query.startTimeMax": format_time(end)}
    window = {"start": format_time(start), "end": format_time(end)}

    def search(attributes: dict[str, str]) -> str:
        return "/api/v3/traces?" + urlencode({**whole, "query.attributes": json.dumps(attributes)})

    return {
        "a_attribute_search": search({"tenant.id": tenant}),
        # A resource attribute (the synthetic spans carry none as a span attribute), found
        # and not found: "not found" is the case that would read every span of the window.
        "a_resource_search": search({"service.version": synthetic.VERSIONS[-1]}),
        "a_resource_search_none": search({"service.version": "0.0.0"}),
        # What a lab asks: one tenant's requests to one endpoint of one service.
        "a_service_operation_tenant_search": "/api/v3/traces?"
        + urlencode(
            {
                **whole,
                "query.serviceName": "gateway",
                "query.operationName": "PUT /cart",
                "query.attributes": json.dumps({"tenant.id": tenant}),
            }
        ),
        "b_service_search": "/api/v3/traces?" + urlencode({**whole, "query.serviceName": "orders"}),
        "c_breakdown_all": "/api/o11ykit/breakdown?"
        + urlencode({"groupBy": "tenant.id", "start": format_time(start), "end": format_time(end)}),
        "c_breakdown_15min": "/api/o11ykit/breakdown?"
        + urlencode(
            {"groupBy": "tenant.id", "start": format_time(recent), "end": format_time(end)}
        ),
        "d_compare_errors_15min": "/api/o11ykit/compare?"
        + urlencode({"selection": "errors", "start": format_time(recent), "end": format_time(end)}),
        # Where the failures began: never from rollups, each error span's children looked up.
        "d_compare_origin_errors_15min": "/api/o11ykit/compare?"
        + urlencode(
            {"selection": "origin-errors", "start": format_time(recent), "end": format_time(end)}
        ),
        # Filtered breakdowns cannot use the rollups: they read the matching spans.
        "e_breakdown_where_version": "/api/o11ykit/breakdown?"
        + urlencode(
            {
                "groupBy": "tenant.id",
                "where": json.dumps({"service.version": synthetic.VERSIONS[-1]}),
                **window,
            }
        ),
        "e_breakdown_service_15min": "/api/o11ykit/breakdown?"
        + urlencode(
            {
                "groupBy": "http.route",
                "service": "orders",
                "start": format_time(recent),
                "end": format_time(end),
            }
        ),
    }


def _get(connection: http.client.HTTPConnection, path: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    document = json.loads(body)
    # A search that finds nothing is a 404 "No traces found", as Jaeger answers it.
    nothing_found = response.status == 404 and path.startswith("/api/v3/traces?")
    if response.status != 200 and not nothing_found:
        raise RuntimeError(f"GET {path} answered {response.status}: {body[:300]!r}")
    return elapsed, {"result": {"resourceSpans": []}} if nothing_found else document


def _size(document: dict[str, Any]) -> int:
    """What an answer held: spans for a search, spans grouped for breakdown and compare."""
    if "result" in document:
        return sum(
            len(ss.get("spans", []))
            for rs in document["result"]["resourceSpans"]
            for ss in rs.get("scopeSpans", [])
        )
    if "total" in document:
        return int(document["total"])
    return int(document.get("selectionCount", 0)) + int(document.get("baselineCount", 0))


def run_queries(
    store: StoreProcess, cases: dict[str, str], repeat: int, warmup: int, budget_s: float
) -> dict[str, Any]:
    """Each query in turn, round after round, until each has `repeat` measured answers.

    Each query has its own time budget: one that is far slower than the rest stops early
    (its `n` says how many it got) instead of taking the whole run, or the others' rounds.
    """
    connection = http.client.HTTPConnection("127.0.0.1", store.query_port, timeout=60)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    spent = dict.fromkeys(cases, 0.0)
    answered: dict[str, int] = {}
    try:
        for round_no in range(warmup + repeat):
            for name, path in cases.items():
                if spent[name] > budget_s:
                    continue
                elapsed, document = _get(connection, path)
                spent[name] += elapsed
                answered[name] = _size(document)
                if round_no >= warmup:
                    samples[name].append(elapsed * 1000)
    finally:
        connection.close()
    return {
        name: {
            **percentiles(values),
            "stopped_by_budget": len(values) < repeat,
            "answer_size": answered.get(name),
            "path": cases[name],
        }
        for name, values in samples.items()
    }


def percentiles(values_ms: list[float]) -> dict[str, Any]:
    """Nearest rank, as the store's own breakdown computes them."""
    ordered = sorted(values_ms)

    def rank(p: float) -> float | None:
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)] if ordered else None

    return {
        "n": len(ordered),
        "p50_ms": rank(0.5),
        "p95_ms": rank(0.95),
        "max_ms": ordered[-1] if ordered else None,
    }


# ------------------------------------------------------------------------------ bookkeeping


def check_disk(parent: Path, spans: int) -> None:
    # The 1M-span store takes ~0.9 GB; ingest stores and the checkpoint need room too.
    needed = max(0.5 * GB, 3 * GB * spans / 1_000_000)
    free = shutil.disk_usage(parent).free
    if free < needed:
        raise SystemExit(
            f"not enough free disk under {parent}: {free / GB:.1f} GB free, this run needs "
            f"{needed / GB:.1f} GB (--spans {spans}); free some space or pass --dir elsewhere"
        )


def environment() -> dict[str, Any]:
    return machine(
        (
            "opentelemetry-sdk",
            "opentelemetry-exporter-otlp-proto-http",
            "protobuf",
            "grpcio",
            "o11ykit",
        )
    )


# ------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="spans in the full store")
    parser.add_argument(
        "--window-minutes",
        type=float,
        default=60.0,
        help="time the full store's spans are spread over",
    )
    parser.add_argument("--ingest-seconds", type=float, default=10.0)
    parser.add_argument("--ingest-warmup", type=float, default=1.0)
    parser.add_argument(
        "--ingest-rounds",
        type=int,
        default=3,
        help="rounds of the exporter clients, each into the store and the bare receiver",
    )
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=30, help="measured rounds of queries")
    parser.add_argument("--query-warmup", type=int, default=2)
    parser.add_argument(
        "--query-budget",
        type=float,
        default=40.0,
        help="seconds per query kind; a query stops repeating past it",
    )
    parser.add_argument("--spawns", type=int, default=10)
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="parent of the work dir (default: the system temp dir)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--results", type=Path, default=RESULTS_FILE)
    args = parser.parse_args(argv)
    if (
        min(args.spans, args.clients, args.repeat, args.spawns, args.ingest_rounds) < 1
        or args.ingest_seconds <= 0
    ):
        parser.error(
            "--spans, --clients, --repeat, --spawns, --ingest-rounds and --ingest-seconds"
            " must be > 0"
        )
    return args


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    def one(mode: str, receiver: str = "store") -> dict[str, Any]:
        return phase(
            f"1. ingest, {args.clients} {mode} clients into the {RECEIVER_NAMES[receiver]}, "
            f"{args.ingest_seconds:g} s",
            lambda: ingest_round(
                work, mode, args.clients, args.ingest_seconds, args.ingest_warmup, receiver
            ),
        )

    # The store and the bare receiver in turn, each first on alternate rounds: a machine
    # that slows down or speeds up during the run moves both.
    rounds = []
    for n in range(args.ingest_rounds):
        order = RECEIVERS if n % 2 == 0 else RECEIVERS[::-1]
        rounds.append({receiver: one("exporter", receiver) for receiver in order})
    exporter = exporter_summary(rounds)
    ingest = [exporter["store"], *(one(mode) for mode in INGEST_MODES[1:])]
    full = work / "full"
    filled = phase(
        f"2. fill {args.spans:,} spans in-process",
        lambda: fill(full, args.spans, args.window_minutes),
    )
    disk = disk_usage(full, stored_spans(full))
    start = phase(
        f"3. start to ready, {args.spawns} x (empty, full)",
        lambda: start_to_ready(work, full, args.spawns),
    )
    tenant, tenant_spans = mid_tenant(full)
    cases = query_cases(filled, tenant)
    with store_process(full) as store:
        memory = {"full_store_after_start": proc_memory_mb(store.pid)}
        queries = phase(
            f"4. queries, {args.query_warmup} + {args.repeat} rounds",
            lambda: run_queries(store, cases, args.repeat, args.query_warmup, args.query_budget),
        )
        memory["full_store_after_queries"] = proc_memory_mb(store.pid)
    memory["ingest_store_at_end"] = {r["mode"]: r["store_memory"] for r in ingest}
    # The full store above was filled by this process; this one ingested its spans itself.
    ingested = phase(
        f"5. memory of a store fed {args.spans:,} fresh spans by {args.clients} clients",
        lambda: ingest_until(work, args.spans, args.clients, max(60.0, args.spans / 5_000)),
    )
    return {
        "ingest": ingest,
        "ingest_exporter_rounds": rounds,
        "ingest_exporter_summary": exporter["summary"],
        "fill": filled,
        "disk": disk,
        "start_to_ready": start,
        "queries": {"tenant": tenant, "tenant_spans": tenant_spans, **queries},
        "memory": memory,
        "ingested_store": ingested,
    }


def store_stops() -> dict[str, Any]:
    return {
        "store_stops": {
            "count": len(STOPS),
            "killed": sum(s["returncode"] == -9 for s in STOPS),
            "max_seconds": max((s["seconds"] for s in STOPS), default=None),
        }
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_disk(args.dir or Path(tempfile.gettempdir()), args.spans)
    report = run_and_record(
        "benchmarks.store.run",
        args,
        measure,
        described={
            "environment": environment(),
            "targets": TARGETS,
            "measured_elsewhere_not_here": ELSEWHERE,
        },
        after=store_stops,
    )
    print_report(report, args.results)
    return 0


# ------------------------------------------------------------------------------ report


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, value, target and verdict) for the table."""
    rows: list[tuple[str, str, str]] = []
    for r in report["ingest"]:
        target = TARGETS["ingest_exporter_spans_per_s"]
        verdict = {
            "exporter": f">= {target:,}: {target_mark(r['spans_per_s'] >= target)}",
            "raw": "(store's ceiling)",
        }.get(r["mode"], "")
        rows.append(
            (
                f"ingest, {r['clients']} x {INGEST_LABELS[r['mode']]}, spans/s stored",
                f"{r['spans_per_s']:,.0f}  (store CPU {r['store_cpu_share']:.2f}, "
                f"clients {r['clients_cpu_share']:.2f} cores)",
                verdict,
            )
        )
        if r["mode"] == "exporter":
            rows += yardstick_rows(report["ingest_exporter_summary"])
    fill, disk = report["fill"], report["disk"]
    rows.append(
        (
            f"in-process fill, spans/s (no HTTP), {fill['spans']:,} spans",
            f"{fill['spans_per_s']:,.0f}",
            "",
        )
    )
    rows.append(
        (
            f"bytes on disk per span at {disk['spans']:,} spans",
            f"{disk['bytes_per_span']:.0f}  ({disk['bytes'] / 1e6:,.0f} MB)",
            "",
        )
    )
    queries = report["queries"]
    for name, q in queries.items():
        if not isinstance(q, dict):
            continue
        gated = name.startswith(("a_", "c_", "e_"))
        verdict = (
            f"p95 <= 200: {target_mark(q['p95_ms'] <= TARGETS['query_p95_ms'])}"
            if gated and q["p95_ms"] is not None
            else ""
        )
        value = (
            "no samples"
            if q["p50_ms"] is None
            else f"p50 {q['p50_ms']:.0f} / p95 {q['p95_ms']:.0f} ms "
            f"(n={q['n']}{', time budget' if q['stopped_by_budget'] else ''}, "
            f"size {q['answer_size']})"
        )
        rows.append((f"query {name}", value, verdict))
    for kind, s in report["start_to_ready"].items():
        rows.append(
            (
                f"start to ready, {kind} store",
                f"median {s['median_s']:.2f} / max {s['max_s']:.2f} s",
                f"< 1 s: {target_mark(s['max_s'] < TARGETS['start_s'])}",
            )
        )
    for when, m in report["memory"].items():
        entries = m.items() if when == "ingest_store_at_end" else [("", m)]
        for mode, mem in entries:
            rows.append(
                (
                    f"RSS, {when} {mode}".rstrip(),
                    f"{mem['rss_mb']:.0f} MB (peak {mem['peak_rss_mb']:.0f})",
                    f"< 150 MB: {target_mark(mem['peak_rss_mb'] < TARGETS['rss_mb'])}",
                )
            )
    ingested = report["ingested_store"]
    mem = ingested["memory"]
    reached = "" if ingested["reached"] else f" (wanted {ingested['wanted']:,}: time ran out)"
    rows.append(
        (
            f"RSS, a store that ingested {ingested['spans']:,} spans in"
            f" {ingested['seconds']:.0f} s{reached}",
            f"{mem['rss_mb']:.0f} MB (peak {mem['peak_rss_mb']:.0f})",
            f"< 150 MB: {target_mark(mem['peak_rss_mb'] < TARGETS['rss_mb'])}",
        )
    )
    first, last = ingested["first_10s_spans_per_s"], ingested["last_10s_spans_per_s"]
    if first is not None and last is not None:
        rows.append(
            (
                "  its ingest of fresh traces, first 10 s / last 10 s, spans/s",
                f"{first:,.0f} / {last:,.0f}",
                "",
            )
        )
    return rows


def yardstick_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The exporter clients' rounds: the store beside the bare receiver, and their ratio."""
    rounds = summary["rounds"]
    each = ", ".join(f"{rate:,.0f}" for rate in summary["store_rounds_spans_per_s"])
    bare = ", ".join(f"{rate:,.0f}" for rate in summary["bare_rounds_spans_per_s"])
    return [
        ("  the store's rounds (the median above)", each, ""),
        (
            "  the same clients into the bare receiver, median, spans/s",
            f"{summary['bare_spans_per_s']:,.0f}  (receiver CPU "
            f"{summary['bare_store_cpu_share']:.2f}, clients "
            f"{summary['bare_clients_cpu_share']:.2f} cores; rounds {bare})",
            "(the machine's yardstick)",
        ),
        (
            f"  store / bare receiver, median of {rounds} round ratio(s)",
            f"{summary['ratio_store_to_bare']:.2f}",
            "",
        ),
    ]


def print_report(report: dict[str, Any], results: Path) -> None:
    env, load = report["environment"], report["loadavg_1_5_15"]
    print(
        f"\n{env['date']}  cpus={env['cpus']}  python {env['python']}  sqlite {env['sqlite']}"
        f"  wall {report['wall_seconds']} s  load avg (1 min) {load['start'][0]:.2f} -> "
        f"{load['end'][0]:.2f}"
    )
    rows = report_rows(report)
    width = max(len(r[0]) for r in rows)
    for figure, value, verdict in rows:
        print(f"{figure:<{width}}  {value:<52} {verdict}")
    stops = report["store_stops"]
    print(
        f"store stops: {stops['count']}, killed after ignoring SIGTERM: {stops['killed']}, "
        f"slowest {stops['max_seconds']} s"
    )
    print(
        f"query (a) tenant: {report['queries']['tenant']} "
        f"({report['queries']['tenant_spans']:,} spans)"
    )
    print("\nas quoted in the store's issue, measured elsewhere (benchmarks.store.alternatives")
    print("measures both here, side by side):")
    for other in report["measured_elsewhere_not_here"]:
        print(
            f"  {other['what']:<28} ~{other['spans_per_s']:,} spans/s ingest, "
            f"{other['start_s']} s start, {other['rss_mb']} MB RSS"
        )
    sources = report["o11ykit_sources"]
    print(
        f"o11ykit: git {sources['start']['git_head']}"
        f"{' + uncommitted changes' if sources['start']['o11ykit_uncommitted_changes'] else ''}"
        f", sources {sources['start']['sources_sha256']}"
    )
    if sources["start"]["sources_sha256"] != sources["end"]["sources_sha256"]:
        print(
            "WARNING: o11ykit's sources changed during this run; stores spawned at different "
            "times may have run different code: run again for usable figures"
        )
    shown = results
    with contextlib.suppress(ValueError):
        shown = results.resolve().relative_to(REPO_ROOT)
    print(f"\nresults: {shown}")
    print(f"command: {report['command']}")


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted; child processes stopped", file=sys.stderr)
        raise SystemExit(130) from None
