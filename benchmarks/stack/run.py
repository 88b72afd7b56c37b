"""Sample system benchmark: cold start to healthy, memory under traffic, fault to signal.

Run from the repository root:  ``.venv/bin/python -m benchmarks.stack.run``

The whole sample system (the local trace store and the five services, each its own process
on 127.0.0.1 with free ports) is started with ``sample_app.stack.Stack``, exactly as tests
and ``o11ykit app up`` start it. Phases, in order:

0. seed a fresh SQLite data dir once (``sample_app.seed.seed``), timed on its own;
1. cold start to healthy on that seeded dir, ``--rounds`` times (``Stack.start()`` returns
   once every service answers ``/health`` and the store is ready), then the same on Postgres
   when ``--database-url`` is given or the default Postgres answers;
2. one SQLite stack: total RSS (store + services, ``VmRSS`` from /proc) right after start,
   then after 30 s of default traffic at 20 requests/s;
3. on the same stack, for every catalogue fault: inject, then
   ``sample_app.faults.contract.observe(..., want="present")`` until its signals are
   queryable in the store (or 30 s pass); time from the inject call to observe's return;
   then clear the fault and wait its settle time.

It prints a table and writes ``results-latest.json`` next to this file (or ``--results``).
Everything is under one temp dir, removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REPO_ROOT,
    machine,
    phase,
    run_and_record,
    target_mark,
)
from o11ykit.backends.jaeger_query import JaegerQuery
from sample_app import seed
from sample_app.control import StackFaults
from sample_app.faults import catalogue, contract
from sample_app.stack import Stack, StackConfig
from sample_app.traffic import TrafficConfig
from sample_app.traffic import run as run_traffic

HERE = Path(__file__).resolve().parent
RESULTS_FILE = HERE / "results-latest.json"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGETS = {"cold_start_s": 5.0, "rss_mb": 600.0, "fault_to_signal_s": 10.0}
# Published by others, quoted for scale only; see the README.
ELSEWHERE = [
    {
        "what": "OpenTelemetry Demo (docker compose), memory",
        "figure": "3–6 GB",
        "note": "published figure, not measured here",
    }
]
TRAFFIC_RATE = 20.0
TRAFFIC_SECONDS = 30.0
OBSERVE_MAX_S = 30.0


# ------------------------------------------------------------------------------ process facts


def _status(pid: int) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) * 1024
    return found


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found.extend(int(p) for p in text)
    return found


def stack_pids(stack: Stack) -> dict[str, int]:
    pids = {name: info["pid"] for name, info in stack.state()["services"].items()}
    if stack.store is not None:
        pids["store"] = stack.store.pid
    return pids


def stack_memory(stack: Stack) -> dict[str, Any]:
    """VmRSS (and peak VmHWM) per process, in MB (10^6 bytes), and their sum.

    Any child processes of these (there are none with the current services: uvicorn runs
    one process each, the store one) would be added to their parent's figure.
    """
    per: dict[str, dict[str, float]] = {}
    descendants = 0
    for name, pid in stack_pids(stack).items():
        rss = hwm = 0
        todo = [pid]
        while todo:
            current = todo.pop()
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                facts = _status(current)
                rss += facts["VmRSS"]
                hwm += facts["VmHWM"]
                kids = _children(current)
                descendants += len(kids)
                todo.extend(kids)
        per[name] = {"rss_mb": rss / 1e6, "peak_rss_mb": hwm / 1e6}
    return {
        "total_rss_mb": sum(p["rss_mb"] for p in per.values()),
        "total_peak_rss_mb": sum(p["peak_rss_mb"] for p in per.values()),
        "processes": len(per),
        "child_processes_included": descendants,
        "per_process": per,
    }


# ------------------------------------------------------------------------------ helpers


def quiet(_: str) -> None:
    pass


@contextlib.contextmanager
def started_stack(config: StackConfig) -> Iterator[Stack]:
    stack = Stack(config)
    try:
        stack.start(progress=quiet)
        yield stack
    finally:
        stack.stop()


def spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "median_s": None, "max_s": None, "min_s": None, "all_s": []}
    return {
        "n": len(values),
        "median_s": statistics.median(values),
        "max_s": max(values),
        "min_s": min(values),
        "all_s": [round(v, 3) for v in values],
    }


def postgres_unavailable(url: str) -> str | None:
    """Why this Postgres cannot be used, or None when it answers."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=2
        ):
            return None
    except Exception as exc:
        return f"no Postgres answers at {url} ({type(exc).__name__}: {str(exc).strip()[:160]})"


def postgres_server_version(url: str) -> str | None:
    with contextlib.suppress(Exception):
        import psycopg

        plain = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, connect_timeout=2) as connection:
            return str(connection.execute("SHOW server_version").fetchone()[0])
    return None


def environment() -> dict[str, Any]:
    return machine(
        (
            "o11ykit",
            "opentelemetry-sdk",
            "fastapi",
            "starlette",
            "uvicorn",
            "sqlalchemy",
            "httpx",
            "psycopg",
            "grpcio",
            "protobuf",
        )
    )


# ------------------------------------------------------------------------------ 0 and 1


def timed_seed(directory: Path, database_url: str | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    report = seed.seed(directory, database_url)
    return {"seconds": time.perf_counter() - started, "schemas": report}


def cold_starts(directory: Path, rounds: int, database_url: str | None) -> dict[str, Any]:
    """Stack(...).start() to return (every service healthy, store ready), then stop."""
    starts: list[float] = []
    stops: list[float] = []
    for _ in range(rounds):
        stack = Stack(StackConfig(data_dir=directory, free_ports=True, database_url=database_url))
        try:
            started = time.perf_counter()
            stack.start(progress=quiet)
            starts.append(time.perf_counter() - started)
        finally:
            stopping = time.perf_counter()
            stack.stop()
            stops.append(time.perf_counter() - stopping)
    return {**spread(starts), "stop_s": [round(s, 3) for s in stops]}


# ------------------------------------------------------------------------------ 2 and 3


def memory_under_traffic(stack: Stack) -> dict[str, Any]:
    after_start = stack_memory(stack)
    summary = run_traffic(
        TrafficConfig(base_url=stack.gateway_url, rate=TRAFFIC_RATE, duration_s=TRAFFIC_SECONDS)
    )
    after_traffic = stack_memory(stack)
    return {
        "after_start": after_start,
        "after_traffic": after_traffic,
        "traffic": {
            "rate": TRAFFIC_RATE,
            "seconds": TRAFFIC_SECONDS,
            "requests": summary.total,
            "achieved_rate": round(summary.rate, 2),
            "errors": summary.errors,
            "by_status": {str(k): v for k, v in sorted(summary.by_status.items())},
        },
    }


def fault_to_signal(stack: Stack) -> list[dict[str, Any]]:
    faults = StackFaults.from_state(stack.state())
    query = JaegerQuery(stack.query_url)
    rows: list[dict[str, Any]] = []
    for fault in catalogue.FAULTS:
        row: dict[str, Any] = {"fault": fault.id, "settle_s": fault.settle_s}
        try:
            started = time.monotonic()
            faults.inject(fault.id)
            observed = contract.observe(
                fault,
                query,
                stack.gateway_url,
                want="present",
                seed=sum(map(ord, fault.id)),
                max_s=OBSERVE_MAX_S,
            )
            row["seconds"] = time.monotonic() - started
            row["observe_seconds"] = observed.seconds
            row["present"] = all(m.present for m in observed.measurements)
            row["measurements"] = [m.describe() for m in observed.measurements]
        except Exception as exc:  # one fault's failure must not lose the others' figures
            row["error"] = f"{type(exc).__name__}: {exc}"
            row["present"] = False
        finally:
            with contextlib.suppress(Exception):
                faults.clear(fault.id)
            time.sleep(fault.settle_s)
        shown = f"{row['seconds']:.1f} s" if "seconds" in row else row["error"]
        print(f"  {fault.id:<18} {shown}  present={row['present']}", flush=True)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="cold starts per database")
    parser.add_argument(
        "--database-url",
        default=None,
        help=f"Postgres for the cold-start row (default: {DEFAULT_POSTGRES}, if it answers)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="skip the Postgres row")
    parser.add_argument("--no-faults", action="store_true", help="skip fault to signal")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the work dir")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--results", type=Path, default=RESULTS_FILE)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    return args


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    sqlite_dir = work / "sqlite"
    results: dict[str, Any] = {}
    results["seed_sqlite"] = phase("0. seed SQLite", lambda: timed_seed(sqlite_dir))
    results["cold_start"] = {
        "sqlite": phase(
            f"1. cold start to healthy, SQLite, {args.rounds} rounds",
            lambda: cold_starts(sqlite_dir, args.rounds, None),
        )
    }
    url = args.database_url or DEFAULT_POSTGRES
    reason = "--no-postgres" if args.no_postgres else postgres_unavailable(url)
    if reason is None:
        postgres_dir = work / "postgres"
        results["seed_postgres"] = phase(
            "1b. seed Postgres (if not seeded yet)", lambda: timed_seed(postgres_dir, url)
        )
        results["cold_start"]["postgres"] = phase(
            f"1b. cold start to healthy, Postgres, {args.rounds} rounds",
            lambda: cold_starts(postgres_dir, args.rounds, url),
        )
        results["postgres"] = {"url": url, "server_version": postgres_server_version(url)}
    else:
        print(f"1b. Postgres skipped: {reason}", flush=True)
        results["postgres"] = {"url": url, "skipped": reason}
    with started_stack(StackConfig(data_dir=sqlite_dir, free_ports=True)) as stack:
        results["memory"] = phase(
            f"2. memory, after start and after {TRAFFIC_SECONDS:g} s of traffic",
            lambda: memory_under_traffic(stack),
        )
        if not args.no_faults:
            rows = phase(
                f"3. fault to signal, {len(catalogue.FAULTS)} faults",
                lambda: fault_to_signal(stack),
            )
            timed = [r["seconds"] for r in rows if "seconds" in r]
            results["fault_to_signal"] = {
                "rows": rows,
                **spread(timed),
                "all_present": all(r["present"] for r in rows),
            }
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run_and_record(
        "benchmarks.stack.run",
        args,
        measure,
        described={
            "environment": environment(),
            "targets": TARGETS,
            "published_elsewhere_not_measured_here": ELSEWHERE,
        },
    )
    print_report(report, args.results)
    return 0


# ------------------------------------------------------------------------------ report


def print_footer(report: dict[str, Any], results: Path) -> None:
    sources = report["o11ykit_sources"]
    print(
        f"o11ykit: git {sources['start']['git_head']}"
        f"{' + uncommitted changes' if sources['start']['o11ykit_uncommitted_changes'] else ''}"
        f", sources {sources['start']['sources_sha256']}"
    )
    if sources["start"]["sources_sha256"] != sources["end"]["sources_sha256"]:
        print(
            "WARNING: o11ykit's sources changed during this run; processes started at "
            "different times may have run different code: run again for usable figures"
        )
    shown = results
    with contextlib.suppress(ValueError):
        shown = results.resolve().relative_to(REPO_ROOT)
    print(f"\nresults: {shown}")
    print(f"command: {report['command']}")


def print_header(report: dict[str, Any]) -> None:
    env, load = report["environment"], report["loadavg_1_5_15"]
    print(
        f"\n{env['date']}  cpus={env['cpus']}  python {env['python']}  sqlite {env['sqlite']}"
        f"  wall {report['wall_seconds']} s  load avg (1 min) {load['start'][0]:.2f} -> "
        f"{load['end'][0]:.2f}"
    )


def _seed_text(seeded: dict[str, Any]) -> str:
    parts = []
    for schema, info in seeded["schemas"].items():
        parts.append(
            f"{schema} already seeded"
            if "already seeded" in info
            else f"{schema} {info['seconds']:.1f} s"
        )
    return f"{seeded['seconds']:.1f} s ({', '.join(parts)})"


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = [
        ("seed, SQLite (once)", _seed_text(report["seed_sqlite"]), "")
    ]
    if "seed_postgres" in report:
        rows.append(("seed, Postgres (once)", _seed_text(report["seed_postgres"]), ""))
    target = TARGETS["cold_start_s"]
    for db, s in report["cold_start"].items():
        rows.append(
            (
                f"cold start to healthy, {db}, {s['n']} rounds",
                f"median {s['median_s']:.2f} / max {s['max_s']:.2f} s",
                f"<= {target:g} s: {target_mark(s['max_s'] <= target)}",
            )
        )
    if "skipped" in report["postgres"]:
        rows.append(("cold start to healthy, postgres", "not run", report["postgres"]["skipped"]))
    memory = report["memory"]
    for when in ("after_start", "after_traffic"):
        m = memory[when]
        rows.append(
            (
                f"RSS, store + 5 services, {when.replace('_', ' ')}",
                f"{m['total_rss_mb']:.0f} MB (peaks summed {m['total_peak_rss_mb']:.0f})",
                f"<= {TARGETS['rss_mb']:.0f} MB: "
                f"{target_mark(m['total_rss_mb'] <= TARGETS['rss_mb'])}",
            )
        )
    if "fault_to_signal" in report:
        f = report["fault_to_signal"]
        target = TARGETS["fault_to_signal_s"]
        rows.append(
            (
                f"fault to signal, {f['n']} faults",
                f"median {f['median_s']:.1f} / max {f['max_s']:.1f} s",
                f"<= {target:g} s: {target_mark(f['max_s'] <= target and f['all_present'])}",
            )
        )
    return rows


def print_report(report: dict[str, Any], results: Path) -> None:
    print_header(report)
    rows = report_rows(report)
    width = max(len(r[0]) for r in rows)
    for figure, value, verdict in rows:
        print(f"{figure:<{width}}  {value:<44} {verdict}")
    memory = report["memory"]
    per = memory["after_traffic"]["per_process"]
    print(
        "RSS after traffic per process: "
        + ", ".join(f"{name} {m['rss_mb']:.0f}" for name, m in per.items())
        + f" MB; traffic: {memory['traffic']['requests']} requests, "
        f"{memory['traffic']['errors']} errors"
    )
    if "fault_to_signal" in report:
        print("\nfault               seconds  present")
        for row in report["fault_to_signal"]["rows"]:
            seconds = f"{row['seconds']:7.1f}" if "seconds" in row else "  error"
            over = " (over 10 s)" if row.get("seconds", 0) > TARGETS["fault_to_signal_s"] else ""
            print(f"{row['fault']:<18} {seconds}  {'yes' if row['present'] else 'NO'}{over}")
            if "error" in row:
                print(f"    {row['error']}")
    print("\npublished elsewhere, not measured here:")
    for other in report["published_elsewhere_not_measured_here"]:
        print(f"  {other['what']}: {other['figure']} ({other['note']})")
    print_footer(report, results)


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted; child processes stopped", file=sys.stderr)
        raise SystemExit(130) from None
