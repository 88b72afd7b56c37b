"""Overhead benchmark runner: (a) uninstrumented vs (b) plain OpenTelemetry vs (c) o11ykit.

Run from the repository root:  ``.venv/bin/python -m benchmarks.overhead.run``

Packages: variant (b) needs plain-OpenTelemetry pieces that are NOT o11ykit
dependencies: ``opentelemetry-instrumentation-fastapi``,
``opentelemetry-instrumentation-sqlalchemy`` and ``opentelemetry-exporter-otlp-proto-http``.
When one is missing this runner pip-installs it into the running (project) venv,
pinned to the OpenTelemetry versions already installed there so pip never
up/downgrades the project's own OpenTelemetry packages. If no release of an
instrumentation matches those versions (e.g. the SQLAlchemy instrumentor, whose
latest release pins an older ``opentelemetry-instrumentation`` exactly), it is
installed with ``--no-deps``; ``pip check`` will then list that pin. Nothing is
installed when everything is present (idempotent); ``--no-install`` disables it.

What it does: makes a 10,000-row SQLite DB in a temp dir, starts an OTLP/HTTP sink
process, then for each round runs the variants in turn (a b c a b c ...), each in a
fresh uvicorn process (1 worker, asyncio loop, h11, no access log) loaded by a
separate load-generator process over loopback. It then counts which spans each
variant produces (a short low-rate "census" against the built-in sink, by
instrumentation scope and span name), times import/init costs in fresh
interpreters, prints a table and writes ``results-latest.json`` next to this file.
Every child process is stopped on exit, including on Ctrl-C and errors.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REPO_ROOT,
    compile_sources,
    exact_command,
    o11ykit_snapshot,
    raise_on_sigterm,
    version,
)
from benchmarks.overhead import importcost
from benchmarks.overhead.app import create_db

HERE = Path(__file__).resolve().parent
RESULTS_FILE = HERE / "results-latest.json"
RECEIVER_MODULE = "tests.support.otlp_receiver"
VARIANT_NAMES = {
    "a": "uninstrumented",
    "b": "plain OpenTelemetry (docs setup)",
    "c": "o11ykit.init",
}
STOP_TIMEOUT = 10.0
READY_TIMEOUT = 30.0
CENSUS_REQUESTS = 200

# --------------------------------------------------------------------------- packages

# Module to import -> distribution that provides it, for variant (b).
PLAIN_OTEL_NEEDS = {
    "opentelemetry.instrumentation.fastapi": "opentelemetry-instrumentation-fastapi",
    "opentelemetry.instrumentation.sqlalchemy": "opentelemetry-instrumentation-sqlalchemy",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter": (
        "opentelemetry-exporter-otlp-proto-http"
    ),
}
# Installed OTel distributions that pip must not move while adding the ones above.
PINNED_OTEL = (
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-proto",
    "opentelemetry-exporter-otlp-proto-common",
    "opentelemetry-instrumentation",
    "opentelemetry-semantic-conventions",
    "opentelemetry-util-http",
)


def _module_present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _pip(args: list[str]) -> bool:
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", *args]
    print("  $", shlex.join(cmd), flush=True)
    return subprocess.run(cmd, timeout=600).returncode == 0


def _matching_spec(dist: str) -> str:
    """``dist==version`` aligned with the installed OTel release line, if known."""
    if dist.startswith("opentelemetry-instrumentation-"):
        line = version("opentelemetry-instrumentation")
    else:  # the exporter follows the SDK's version numbers
        line = version("opentelemetry-sdk")
    return f"{dist}=={line}" if line else dist


def ensure_plain_otel(workdir: Path) -> list[str]:
    """Install variant (b)'s packages if missing; return notes on what was done."""
    missing = [dist for module, dist in PLAIN_OTEL_NEEDS.items() if not _module_present(module)]
    if not missing:
        return []
    constraints = workdir / "otel-constraints.txt"
    constraints.write_text(
        "".join(f"{d}=={v}\n" for d in PINNED_OTEL if (v := version(d)) is not None)
    )
    notes = []
    for dist in missing:
        spec = _matching_spec(dist)
        if _pip(["-c", str(constraints), spec]):
            notes.append(f"installed {spec}")
            continue
        print(f"  no {spec} (see pip above); installing the latest {dist} with --no-deps")
        if _pip(["--no-deps", dist]):
            importlib.invalidate_caches()  # so version() sees the new distribution
            notes.append(
                f"installed {dist}=={version(dist)} with --no-deps: no release matches the "
                "installed OpenTelemetry versions and a normal install would downgrade them"
            )
        else:
            raise SystemExit(f"could not install {dist}; see pip's output above")
    importlib.invalidate_caches()
    return notes


# --------------------------------------------------------------------------- processes


class Children:
    """Every child process we start, so that all of them are stopped on any exit."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        """Send ``sig``, then SIGKILL if the process has not exited after a timeout."""
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self._procs):
            self.stop(proc)


def _child_env(**extra: str) -> dict[str, str]:
    # Drop OTEL_*/FASTAPI_OTEL_* from the caller's shell: they would change what is measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FASTAPI_OTEL_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_for_file(path: Path, proc: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if path.exists():
            with contextlib.suppress(ValueError):
                return json.loads(path.read_text())
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args!r} did not become ready:\n{_log_tail(log)}")


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.settimeout(0.5)
            sock.connect(("127.0.0.1", port))
            return
        time.sleep(0.05)
    raise RuntimeError(f"uvicorn on port {port} did not become ready:\n{_log_tail(log)}")


# --------------------------------------------------------------------------- sinks


@dataclass
class Sink:
    kind: str  # "builtin" (benchmarks/overhead/sink.py) or "receiver" (tests/support)
    url: str
    proc: subprocess.Popen[bytes]
    record: Path | None = None

    def span_total(self) -> int:
        if self.record is None:
            return int(self.stats()["spans"])
        total = 0
        with contextlib.suppress(FileNotFoundError), self.record.open() as handle:
            for line in handle:
                with contextlib.suppress(ValueError):
                    total += int(json.loads(line).get("span_count", 0))
        return total

    def stats(self) -> dict[str, Any]:
        """Per scope/name counters; only the built-in sink has them."""
        with urllib.request.urlopen(f"{self.url}/stats", timeout=5) as response:
            return dict(json.loads(response.read()))


def start_builtin_sink(children: Children, workdir: Path, inspect: bool = False) -> Sink:
    tag = "census-sink" if inspect else "sink"
    ready, log = workdir / f"{tag}.ready", workdir / f"{tag}.log"
    cmd = [sys.executable, "-m", "benchmarks.overhead.sink", "--ready-file", str(ready)]
    cmd += ["--inspect"] if inspect else []
    proc = children.start(cmd, log, _child_env())
    port = int(_wait_for_file(ready, proc, log)["http_port"])
    return Sink("builtin", f"http://127.0.0.1:{port}", proc)


def _one_span_export() -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.name, span.trace_id, span.span_id = "probe", b"\x01" * 16, b"\x02" * 8
    return request.SerializeToString()


def start_receiver_sink(children: Children, workdir: Path) -> Sink:
    """The project's test receiver in discard mode; checked with a one-span export."""
    ready, log = workdir / "receiver.ready", workdir / "receiver.log"
    record = workdir / "receiver-record.jsonl"
    cmd = [
        sys.executable,
        "-m",
        RECEIVER_MODULE,
        "--record",
        str(record),
        "--ready-file",
        str(ready),
        "--mode",
        "discard",
    ]
    proc = children.start(cmd, log, _child_env())
    try:
        port = int(_wait_for_file(ready, proc, log)["http_port"])
        sink = Sink("receiver", f"http://127.0.0.1:{port}", proc, record)
        probe = urllib.request.Request(
            f"{sink.url}/v1/traces",
            data=_one_span_export(),
            method="POST",
            headers={"Content-Type": "application/x-protobuf"},
        )
        with urllib.request.urlopen(probe, timeout=5) as response:
            if response.status != 200:
                raise RuntimeError(f"probe export answered {response.status}")
        deadline = time.monotonic() + 5
        while sink.span_total() != 1:
            if time.monotonic() > deadline:
                raise RuntimeError("probe span not recorded")
            time.sleep(0.05)
        return sink
    except Exception:
        children.stop(proc)
        raise


def start_sink(children: Children, workdir: Path, choice: str) -> tuple[Sink, str]:
    """Return (sink, note). ``auto`` prefers the test receiver when present and working."""
    receiver_file = REPO_ROOT / "tests" / "support" / "otlp_receiver.py"
    if choice == "builtin":
        return start_builtin_sink(children, workdir), "built-in sink (--sink builtin)"
    if choice == "auto" and not receiver_file.exists():
        return start_builtin_sink(children, workdir), "built-in sink (receiver not present)"
    try:
        return start_receiver_sink(children, workdir), f"{RECEIVER_MODULE} --mode discard"
    except Exception as exc:
        if choice == "receiver":
            raise
        note = f"built-in sink ({RECEIVER_MODULE} did not work: {exc!s:.200})"
        return start_builtin_sink(children, workdir), note


# --------------------------------------------------------------------------- server


@contextlib.contextmanager
def serving(
    children: Children, variant: str, sink: Sink, db: Path, workdir: Path, tag: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run uvicorn for one variant; yield (port, setup info written by the app)."""
    port, log, info = _free_port(), workdir / f"server-{tag}.log", workdir / f"info-{tag}.json"
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.overhead.app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "asyncio",
        "--http",
        "h11",
        "--no-access-log",
        "--log-level",
        "warning",
        "--timeout-graceful-shutdown",
        "5",
    ]
    env = _child_env(
        BENCH_VARIANT=variant, BENCH_SINK=sink.url, BENCH_DB=str(db), BENCH_INFO=str(info)
    )
    proc = children.start(cmd, log, env)
    try:
        _wait_for_port(port, proc, log)
        yield port, json.loads(info.read_text()) if info.exists() else {}
    finally:
        # SIGINT, not SIGTERM: after its graceful shutdown uvicorn re-raises the
        # signal it caught, and SIGTERM's default action ends the process without
        # running atexit, where the tracer providers flush their queued spans. The
        # span counts need that flush; SIGINT exits through KeyboardInterrupt instead.
        children.stop(proc, signal.SIGINT)


def load(
    port: int, connections: int, warmup: float, seconds: float, max_requests: int, seed: int
) -> dict[str, Any]:
    """Run the load generator in its own process and return its JSON result."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.overhead.loadgen",
        "--port",
        str(port),
        "--connections",
        str(connections),
        "--warmup",
        str(warmup),
        "--seconds",
        str(seconds),
        "--max-requests",
        str(max_requests),
        "--seed",
        str(seed),
    ]
    done = subprocess.run(
        cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=warmup + seconds + 30
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout))


def preflight(variant: str, sink: Sink, db: Path) -> str | None:
    """Import the app for ``variant`` once; return the error text if that fails."""
    env = _child_env(BENCH_VARIANT=variant, BENCH_SINK=sink.url, BENCH_DB=str(db))
    code = "import benchmarks.overhead.app"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        return "building the app timed out after 60 s"
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit code {done.returncode}"


# --------------------------------------------------------------------------- phases


def timed_rounds(
    args: argparse.Namespace,
    children: Children,
    sink: Sink,
    db: Path,
    workdir: Path,
    variants: list[str],
) -> list[dict[str, Any]]:
    rows = []
    for round_no in range(1, args.rounds + 1):
        for variant in variants:
            spans_before = sink.span_total()
            with serving(children, variant, sink, db, workdir, f"{variant}{round_no}") as (
                port,
                info,
            ):
                result = load(
                    port, args.connections, args.warmup, args.seconds, args.max_requests, args.seed
                )
            # Server stopped: its exit-time flush has been delivered to the sink.
            result.update(
                round=round_no, variant=variant, info=info, spans=sink.span_total() - spans_before
            )
            rows.append(result)
            print(
                f"  round {round_no} ({variant}): {result['rps']:8.1f} req/s  "
                f"p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms  "
                f"spans/req {result['spans'] / max(1, result['responses_total']):.2f}  "
                f"errors {result['errors']}",
                flush=True,
            )
    return rows


def census(
    children: Children, sink: Sink, db: Path, workdir: Path, variants: list[str]
) -> dict[str, Any]:
    """Which spans each variant emits, per request, at a low rate (no queue drops)."""
    out: dict[str, Any] = {}
    for variant in variants:
        before = sink.stats()
        with serving(children, variant, sink, db, workdir, f"{variant}-census") as (port, info):
            result = load(port, 1, 0.0, 30.0, CENSUS_REQUESTS, 7)
        after = sink.stats()
        responses = max(1, result["responses_total"])
        grown = _per_request(before["by_scope_and_name"], after["by_scope_and_name"], responses)
        per_request = {k: v for k, v in grown.items() if v}
        out[variant] = {
            "requests": result["responses_total"],
            "spans_per_request": sum(per_request.values()),
            "by_scope_and_name": per_request,
            **_per_request(before["inspected"], after["inspected"], responses),
            "info": info,
        }
    return out


def _per_request(before: dict[str, int], after: dict[str, int], requests: int) -> dict[str, float]:
    """Counter growth between two /stats snapshots, divided by the request count."""
    keys = sorted(set(after) | set(before))
    return {k: (after.get(k, 0) - before.get(k, 0)) / requests for k in keys}


# --------------------------------------------------------------------------- report


def summarise(rows: list[dict[str, Any]], variants: list[str]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for variant in variants:
        mine = [r for r in rows if r["variant"] == variant]
        summary[variant] = {
            "name": VARIANT_NAMES[variant],
            "rounds": len(mine),
            "rps_median": statistics.median(r["rps"] for r in mine),
            "rps_min": min(r["rps"] for r in mine),
            "rps_max": max(r["rps"] for r in mine),
            "p50_ms_median": statistics.median(r["p50_ms"] for r in mine),
            "p99_ms_median": statistics.median(r["p99_ms"] for r in mine),
            "spans_per_request": sum(r["spans"] for r in mine)
            / max(1, sum(r["responses_total"] for r in mine)),
            "errors": sum(r["errors"] for r in mine),
        }
    base = summary.get("a", {}).get("rps_median")
    baseline = {r["round"]: r["rps"] for r in rows if r["variant"] == "a"}
    for variant, entry in summary.items():
        entry["rps_ratio_to_a"] = entry["rps_median"] / base if base else None
        # Same-round ratios cancel slow drift (other load on the machine) better.
        paired = [
            r["rps"] / baseline[r["round"]]
            for r in rows
            if r["variant"] == variant and baseline.get(r["round"])
        ]
        entry["rps_ratio_to_a_paired_median"] = statistics.median(paired) if paired else None
    return summary


def format_table(summary: dict[str, dict[str, Any]], census_data: dict[str, Any]) -> str:
    header = (
        f"{'variant':<40} {'req/s':>8} {'vs (a)':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'spans/req':>9} {'census':>6}"
    )
    lines = [header, "-" * len(header)]
    for variant, s in summary.items():
        ratio = f"{s['rps_ratio_to_a']:.3f}" if s["rps_ratio_to_a"] is not None else "-"
        cen = census_data.get(variant, {}).get("spans_per_request")
        lines.append(
            f"({variant}) {s['name']:<36} {s['rps_median']:>8.1f} {ratio:>7} "
            f"{s['p50_ms_median']:>7.2f} {s['p99_ms_median']:>7.2f} "
            f"{s['spans_per_request']:>9.2f} {cen if cen is None else format(cen, '.2f'):>6}"
        )
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    dists = (
        "fastapi",
        "starlette",
        "uvicorn",
        "sqlalchemy",
        "opentelemetry-sdk",
        "opentelemetry-instrumentation-fastapi",
        "opentelemetry-instrumentation-sqlalchemy",
        "opentelemetry-exporter-otlp-proto-http",
        "o11ykit",
    )
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {d: version(d) for d in dists},
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--variants", default="a,b,c")
    parser.add_argument(
        "--max-requests", type=int, default=200_000, help="hard bound on requests per run"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sink", choices=("auto", "receiver", "builtin"), default="auto")
    parser.add_argument("--import-runs", type=int, default=7)
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="do not pip-install variant (b)'s packages when missing",
    )
    args = parser.parse_args(argv)
    args.variant_list = [v for v in args.variants.split(",") if v]
    unknown = set(args.variant_list) - set(VARIANT_NAMES)
    if unknown:
        parser.error(f"unknown variant(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_on_sigterm()
    bytecode = compile_sources()
    children = Children()
    notes: list[str] = []
    started = time.monotonic()
    # Anything else busy on the machine skews the figures; the JSON keeps the evidence.
    load_before = os.getloadavg()
    o11ykit_before = o11ykit_snapshot()
    with tempfile.TemporaryDirectory(prefix="o11ykit-overhead-") as tmp:
        workdir = Path(tmp)
        try:
            if "b" in args.variant_list and not args.no_install:
                notes += ensure_plain_otel(workdir)
            db = workdir / "bench.db"
            create_db(str(db))
            sink, sink_note = start_sink(children, workdir, args.sink)
            # Its own sink: the census inspects attributes, which timed runs must not pay for.
            census_sink = start_builtin_sink(children, workdir, inspect=True)
            print(f"sink: {sink_note} at {sink.url}", flush=True)

            variants, skipped = [], {}
            for variant in args.variant_list:
                error = preflight(variant, sink, db)
                if error is None:
                    variants.append(variant)
                else:
                    skipped[variant] = error
                    print(f"variant ({variant}) skipped: {error}", flush=True)

            rows = timed_rounds(args, children, sink, db, workdir, variants)
            print("span census (low rate, built-in sink)...", flush=True)
            census_data = census(children, census_sink, db, workdir, variants)
            print("import/init cost...", flush=True)
            imports = importcost.measure(str(REPO_ROOT), args.import_runs)
        finally:
            children.stop_all()

    summary = summarise(rows, variants)
    report = {
        "command": exact_command("benchmarks.overhead.run"),
        "environment": environment(),
        "settings": {k: v for k, v in vars(args).items() if k != "variant_list"},
        "bytecode": bytecode,
        "sink": sink_note,
        "install_notes": notes,
        "skipped_variants": skipped,
        "summary": summary,
        "census": census_data,
        "import_cost": imports,
        "rounds": rows,
        "wall_seconds": round(time.monotonic() - started, 1),
        "loadavg_1_5_15": {"start": load_before, "end": os.getloadavg()},
        "o11ykit_sources": {"start": o11ykit_before, "end": o11ykit_snapshot()},
    }
    RESULTS_FILE.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    return 0


def print_report(report: dict[str, Any]) -> None:
    env = report["environment"]
    load = report["loadavg_1_5_15"]
    print(
        f"\n{env['date']}  cpus={env['cpus']}  python {env['python']}  "
        f"wall {report['wall_seconds']} s  load avg (1 min) at start "
        f"{load['start'][0]:.2f}, at end {load['end'][0]:.2f}"
    )
    print(format_table(report["summary"], report["census"]))
    print(
        "\nspans/req: delivered to the sink during the timed runs (warm-up included);"
        "\ncensus: emitted per request at low rate, by instrumentation scope | span name:"
    )
    for variant, data in report["census"].items():
        print(f"  ({variant}) {data['spans_per_request']:.2f} spans/request")
        for key, per_request in data["by_scope_and_name"].items():
            print(f"        {per_request:5.2f}  {key}")
        print(
            f"        spans with the raw token secret per request: "
            f"{data.get('spans_with_raw_token', 0):.2f}; spans with the tenant id: "
            f"{data.get('spans_with_tenant', 0):.2f}"
        )
        if data["info"]:
            print(f"        setup: {json.dumps(data['info'])}")
    for variant, error in report["skipped_variants"].items():
        print(f"  ({variant}) NOT RUN: {error}")
    print("\nimport/init cost (fresh interpreter, median ms):")
    for name, data in report["import_cost"].items():
        value = f"{data['median_ms']:7.1f} ms" if "median_ms" in data else f"error: {data['error']}"
        print(f"  {name:<66} {value}")
    sources = report["o11ykit_sources"]
    print(
        f"o11ykit: git {sources['start']['git_head']}, sources {sources['start']['sources_sha256']}"
    )
    if sources["start"] != sources["end"]:
        print(
            "WARNING: o11ykit's sources changed during this run "
            f"(now git {sources['end']['git_head']}, sources {sources['end']['sources_sha256']});"
            " rounds of (c) may have run different code: run again for usable figures"
        )
    for note in report["install_notes"]:
        print(f"note: {note}")
    print(f"\nresults: {RESULTS_FILE.relative_to(REPO_ROOT)}")
    print(f"command: {report['command']}")


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted; child processes stopped", file=sys.stderr)
        raise SystemExit(130) from None
