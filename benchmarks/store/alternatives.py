"""The local store beside the trace stores a learner could install instead, in one run.

Run from the repository root (about 3 minutes, plus ~1 minute and ~900 MB of disk the first
time, to install the others):

    .venv/bin/python -m benchmarks.store.alternatives
    .venv/bin/python -m benchmarks.store.alternatives --only o11ykit --rounds 1 --seconds 2

The stores: o11ykit's (`python -m o11ykit.store serve`), Arize Phoenix (PyPI, `phoenix
serve`) and autotel-devtools (npm, on the Node.js 22 that npm's `node-linux-<arch>`
package carries). The others are installed at pinned versions under
`benchmarks/store/.alternatives/` (gitignored) unless `--no-install`; one that cannot be
installed or started is reported as not measured, with the reason.

Every round, each store in turn (the order rotates from round to round, so drift on the
machine hits each alike):

1. started as its own process with a new data directory, on free ports of 127.0.0.1; start
   to ready = until an HTTP request to its OTLP/HTTP port gets an answer (any status);
2. its RSS, idle;
3. `--clients` processes of `client.py --mode fresh` POST new 512-span protobuf bodies (the
   same bodies for every store, ~15 µs a span of client CPU) for a 1 s warm-up and then
   `--seconds`; spans *stored* are counted by the store's own account at the start and end
   of that interval (o11ykit: the committed row ids; Phoenix: its `spans` table;
   autotel-devtools: `spanCount` of its `/api/stats`), spans *acknowledged* by the clients'
   reports; the store's CPU time from /proc;
4. its RSS at the end, then SIGTERM (SIGKILL after 10 s).

Medians across rounds. It prints a table and writes `results-alternatives-latest.json` next
to this file (or `--results`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import phase, run_and_record
from benchmarks.store.run import (
    CLIENT_READY_TIMEOUT,
    ELSEWHERE,
    _start_client,
    _stop_processes,
    _wait_for,
    environment,
    proc_cpu_seconds,
    proc_memory_mb,
    stored_spans,
)
from o11ykit.store.schema import DATABASE_NAME
from sample_app.stack import free_port

HERE = Path(__file__).resolve().parent
RESULTS_FILE = HERE / "results-alternatives-latest.json"
INSTALL_DIR = HERE / ".alternatives"
# The versions measured; a new one is a new measurement, so they are pinned.
PHOENIX_VERSION = "20.26.1"
AUTOTEL_VERSION = "27.1.0"
NODE_VERSION = "22.23.5"  # autotel-devtools needs Node.js 22 (node:sqlite)
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
INSTALL_TIMEOUT_S = 900.0
NODE_ARCHES = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


class NotMeasured(Exception):
    """A store that cannot be installed or run here; the message says why."""


@dataclass
class Launch:
    """How to start one store with a data directory, and where it then listens."""

    argv: list[str]
    env: dict[str, str]
    http_port: int
    # Spans the store holds, by its own account.
    stored: Callable[[], int]


@dataclass
class Contender:
    name: str
    version: str
    # (the install directory, whether installing is allowed): installs what is missing
    # there, or raises NotMeasured.
    install: Callable[[Path, bool], None]
    # (the install directory, a new data directory): how to start it.
    launch: Callable[[Path, Path], Launch]


# ------------------------------------------------------------------------------ the stores


def _o11ykit_install(installs: Path, allowed: bool) -> None:
    """Nothing to install: it is this repository."""


def _o11ykit_launch(installs: Path, data: Path) -> Launch:
    http_port, grpc_port, query_port = free_port(), free_port(), free_port()
    argv = [sys.executable, "-m", "o11ykit.store", "serve", "--dir", str(data)]
    argv += ["--otlp-http-port", str(http_port), "--otlp-grpc-port", str(grpc_port)]
    argv += ["--query-port", str(query_port)]
    return Launch(argv, {}, http_port, lambda: _o11ykit_stored(data))


def _o11ykit_stored(data: Path) -> int:
    return stored_spans(data) if (data / DATABASE_NAME).exists() else 0


def _phoenix_home(installs: Path) -> Path:
    return installs / f"phoenix-{PHOENIX_VERSION}"


def _must_install(home: Path, allowed: bool) -> bool:
    """False if `home` holds a finished install; else True, once what a failed one left is
    gone. NotMeasured if it is missing and installing is not allowed."""
    if (home / "installed").exists():
        return False
    if not allowed:
        raise NotMeasured(f"not installed under {home} and --no-install was given")
    shutil.rmtree(home, ignore_errors=True)
    return True


def _phoenix_install(installs: Path, allowed: bool) -> None:
    home = _phoenix_home(installs)
    if not _must_install(home, allowed):
        return
    _run_install([sys.executable, "-m", "venv", str(home)])
    pip = [str(home / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run_install([*pip, "--disable-pip-version-check", f"arize-phoenix=={PHOENIX_VERSION}"])
    (home / "installed").write_text(PHOENIX_VERSION)


def _phoenix_launch(installs: Path, data: Path) -> Launch:
    http_port, grpc_port = free_port(), free_port()
    env = {
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(http_port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_WORKING_DIR": str(data),
        "PHOENIX_TELEMETRY_ENABLED": "false",  # no traffic beyond loopback
    }
    argv = [str(_phoenix_home(installs) / "bin" / "phoenix"), "serve"]
    return Launch(argv, env, http_port, lambda: _phoenix_stored(data))


def _phoenix_stored(data: Path) -> int:
    database = data / "phoenix.db"
    if not database.exists():
        return 0
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        return int(connection.execute("SELECT count(*) FROM spans").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not there yet: nothing stored
        return 0
    finally:
        connection.close()


def _autotel_home(installs: Path) -> Path:
    return installs / f"autotel-devtools-{AUTOTEL_VERSION}"


def _node_package() -> str:
    arch = NODE_ARCHES.get(platform.machine().lower())
    if sys.platform != "linux" or arch is None:
        raise NotMeasured(f"no Node.js package from npm for {sys.platform} {platform.machine()}")
    return f"node-linux-{arch}"


def _autotel_install(installs: Path, allowed: bool) -> None:
    home = _autotel_home(installs)
    npm = shutil.which("npm")
    if not _must_install(home, allowed):
        return
    if npm is None:
        raise NotMeasured("npm is not on PATH: autotel-devtools and Node.js 22 come from npm")
    node = _node_package()
    home.mkdir(parents=True)
    _run_install(
        [
            *(npm, "install", "--prefix", str(home), "--no-audit", "--no-fund"),
            *("--loglevel=error", f"{node}@{NODE_VERSION}", f"autotel-devtools@{AUTOTEL_VERSION}"),
        ]
    )
    (home / "installed").write_text(AUTOTEL_VERSION)


def _autotel_launch(installs: Path, data: Path) -> Launch:
    http_port, grpc_port = free_port(), free_port()
    modules = _autotel_home(installs) / "node_modules"
    node = modules / _node_package() / "bin" / "node"
    cli = modules / "autotel-devtools" / "dist" / "cli.js"
    argv = [str(node), str(cli), "--host", "127.0.0.1"]
    argv += ["--port", str(http_port), "--grpc-port", str(grpc_port)]
    # Its default store: an in-memory SQLite database, as `npx autotel-devtools` runs it.
    return Launch(argv, {"NODE_NO_WARNINGS": "1"}, http_port, lambda: _autotel_stored(http_port))


def _autotel_stored(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/api/stats")
        return int(json.loads(connection.getresponse().read())["spanCount"])
    finally:
        connection.close()


def _run_install(argv: list[str]) -> None:
    print("  $", " ".join(argv), flush=True)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NotMeasured(f"installing failed: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise NotMeasured(f"installing failed ({argv[0]} exit {done.returncode}): {' '.join(tail)}")


CONTENDERS = {
    "o11ykit": Contender("o11ykit", "this repository", _o11ykit_install, _o11ykit_launch),
    "phoenix": Contender("Arize Phoenix", PHOENIX_VERSION, _phoenix_install, _phoenix_launch),
    "autotel-devtools": Contender(
        "autotel-devtools",
        f"{AUTOTEL_VERSION} on Node.js {NODE_VERSION}",
        _autotel_install,
        _autotel_launch,
    ),
}


# ------------------------------------------------------------------------------ one round


def tree_memory_mb(pid: int) -> dict[str, float]:
    """RSS and peak of a process and every process under it: a server may fork workers."""
    total = {"rss_mb": 0.0, "peak_rss_mb": 0.0}
    for each in _process_tree(pid):
        try:
            memory = proc_memory_mb(each)
        except (OSError, KeyError):  # gone meanwhile, or a zombie without VmRSS
            continue
        total["rss_mb"] += memory["rss_mb"]
        total["peak_rss_mb"] += memory["peak_rss_mb"]
    return total


def _process_tree(pid: int) -> Iterator[int]:
    yield pid
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = task.read_text().split()
        except OSError:
            continue
        for child in children:
            yield from _process_tree(int(child))


def _answers_http(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        connection.close()


@contextmanager
def running(
    contender: Contender, installs: Path, data: Path, log: Path
) -> Iterator[tuple[Launch, dict[str, Any]]]:
    """The store started and answering; yields its launch and {pid, start_s}, which gets
    how the stop went once it is stopped."""
    launch = contender.launch(installs, data)
    data.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PHOENIX_"))}
    with log.open("wb") as out:
        started = time.monotonic()
        process = subprocess.Popen(
            launch.argv,
            env={**env, **launch.env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, so a stop reaches any child it forked
        )
    facts: dict[str, Any] = {"pid": process.pid}
    try:
        while not _answers_http(launch.http_port):
            if process.poll() is not None:
                raise NotMeasured(f"exited with {process.returncode} before it was ready: {log}")
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise NotMeasured(f"not answering after {READY_TIMEOUT_S:.0f} s: {log}")
            time.sleep(0.01)
        facts["start_s"] = time.monotonic() - started
        yield launch, facts
    finally:
        facts.update(_stop(process))


def _stop(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    started = time.monotonic()
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
        killed = False
    except subprocess.TimeoutExpired:
        killed = True
    # Whatever is left of the group goes too (a child that outlived its parent).
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return {"stop_s": round(time.monotonic() - started, 3), "killed_after_sigterm": killed}


def one_round(key: str, contender: Contender, work: Path, args: argparse.Namespace) -> dict:
    """Start the store, load it, let it drain, stop it; what was measured on the way."""
    name = f"{key}-{time.monotonic_ns()}"
    data = work / name
    procs: list[subprocess.Popen[bytes]] = []
    log = work / f"{name}.log"
    with running(contender, args.install_dir, data, log) as (launch, facts):
        idle = tree_memory_mb(facts["pid"])
        url = f"http://127.0.0.1:{launch.http_port}/v1/traces"
        run_s = args.warmup + args.seconds
        try:
            for n in range(args.clients):
                procs.append(_start_client(work, f"{name}-{n}", "fresh", n, url, run_s))
            for n in range(args.clients):
                _wait_for(work / f"{name}-{n}.ready", procs, CLIENT_READY_TIMEOUT)
            time.sleep(args.warmup)
            measured = _measure(launch, facts["pid"], procs, args.seconds)
        finally:
            _stop_processes(procs)
        reports = [json.loads((work / f"{name}-{n}.json").read_text()) for n in range(args.clients)]
        acknowledged = sum(r["acknowledged"] for r in reports)
        # Acknowledged and not yet stored when the clients stopped: a queue, which a store
        # that answers before it writes (Phoenix) holds in memory.
        measured["waiting_at_end"] = max(0, acknowledged - launch.stored())
        measured["drain"] = _drain(launch, acknowledged, args.drain_seconds)
        measured["held_at_end"] = launch.stored()
        # From the start of the measured load until all it acknowledged was stored (or the
        # drain gave up): what a store keeps up with, whether it writes as it answers or later.
        through = time.monotonic() - measured.pop("started_at")
        measured["sustained_spans_per_s"] = (
            measured["held_at_end"] - measured["held_at_start"]
        ) / through
        measured["memory_at_end"] = tree_memory_mb(facts["pid"])
    shutil.rmtree(data, ignore_errors=True)
    return {
        **facts,
        "memory_idle": idle,
        **measured,
        "acknowledged_total": acknowledged,
        "acknowledged_per_s": acknowledged / max(r["seconds"] for r in reports),
        "busy_answers": sum(r.get("busy_answers", 0) for r in reports),
    }


def _drain(launch: Launch, acknowledged: int, limit_s: float) -> dict[str, Any]:
    """With nothing arriving any more: how long until all acknowledged spans are stored (up
    to `limit_s`), and how fast they went in meanwhile."""
    started, before = time.monotonic(), launch.stored()
    now = before
    while now < acknowledged and time.monotonic() - started < limit_s:
        time.sleep(0.1)
        now = launch.stored()
    elapsed = time.monotonic() - started
    return {
        "seconds": elapsed,
        "spans_stored": now - before,
        "spans_per_s": (now - before) / elapsed if now > before else 0.0,
        "complete": now >= acknowledged,
    }


def _measure(
    launch: Launch, pid: int, procs: list[subprocess.Popen[bytes]], seconds: float
) -> dict[str, Any]:
    cpu0 = proc_cpu_seconds(pid)
    clients0 = sum(proc_cpu_seconds(p.pid) for p in procs)
    start, count0 = time.monotonic(), launch.stored()
    time.sleep(seconds)
    count1 = launch.stored()
    elapsed = time.monotonic() - start
    cpu = proc_cpu_seconds(pid) - cpu0
    stored = count1 - count0
    return {
        "started_at": start,
        "held_at_start": count0,
        "seconds": elapsed,
        "spans_stored": stored,
        "spans_per_s": stored / elapsed,
        "store_cpu_share": cpu / elapsed,
        "store_cpu_us_per_stored_span": cpu / stored * 1e6 if stored else None,
        "clients_cpu_share": (sum(proc_cpu_seconds(p.pid) for p in procs) - clients0) / elapsed,
    }


# ------------------------------------------------------------------------------ the run


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    chosen = {key: CONTENDERS[key] for key in args.only}
    not_measured: dict[str, str] = {}
    for key, contender in chosen.items():
        try:
            phase(
                f"{contender.name}: installed?",
                lambda c=contender: c.install(args.install_dir, args.install),
            )
        except NotMeasured as exc:
            not_measured[key] = str(exc)
            print(f"  not measured: {exc}", flush=True)
    keys = [key for key in chosen if key not in not_measured]
    rounds: dict[str, list[dict[str, Any]]] = {key: [] for key in keys}
    for r in range(args.rounds):
        order = keys[r % len(keys) :] + keys[: r % len(keys)] if keys else []
        for key in order:
            if key in not_measured:
                continue
            label = f"round {r + 1}/{args.rounds}: {chosen[key].name}"
            try:
                rounds[key].append(
                    phase(
                        label,
                        lambda k=key: one_round(k, chosen[k], work, args),
                    )
                )
            except NotMeasured as exc:
                not_measured[key] = str(exc)
                print(f"  not measured: {exc}", flush=True)
    return {
        "stores": {
            key: {
                "name": chosen[key].name,
                "version": chosen[key].version,
                "rounds": rounds[key],
                "medians": medians(rounds[key]),
            }
            for key in keys
            if key not in not_measured and rounds[key]
        },
        "not_measured": {
            key: {"name": chosen[key].name, "why": why} for key, why in not_measured.items()
        },
    }


MEDIAN_FIGURES = {
    "start_s": lambda r: r["start_s"],
    "rss_idle_mb": lambda r: r["memory_idle"]["rss_mb"],
    "spans_per_s": lambda r: r["spans_per_s"],
    "acknowledged_per_s": lambda r: r["acknowledged_per_s"],
    "store_cpu_share": lambda r: r["store_cpu_share"],
    "store_cpu_us_per_stored_span": lambda r: r["store_cpu_us_per_stored_span"],
    "rss_end_mb": lambda r: r["memory_at_end"]["rss_mb"],
    "peak_rss_mb": lambda r: r["memory_at_end"]["peak_rss_mb"],
    "held_at_end": lambda r: r["held_at_end"],
    "waiting_at_end": lambda r: r["waiting_at_end"],
    "drain_spans_per_s": lambda r: r["drain"]["spans_per_s"] or None,
    "drain_s": lambda r: r["drain"]["seconds"],
    "sustained_spans_per_s": lambda r: r["sustained_spans_per_s"],
}


def medians(rounds: list[dict[str, Any]]) -> dict[str, float | None]:
    found: dict[str, float | None] = {}
    for figure, read in MEDIAN_FIGURES.items():
        values = [v for v in map(read, rounds) if v is not None]
        found[figure] = statistics.median(values) if values else None
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        default=",".join(CONTENDERS),
        help=f"stores to measure, comma-separated ({','.join(CONTENDERS)})",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured ingest a round")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=30.0,
        help="after the clients stop, how long to watch the store write what it acknowledged",
    )
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument(
        "--no-install",
        dest="install",
        action="store_false",
        help="measure only the stores already installed under --install-dir",
    )
    parser.add_argument(
        "--install-dir",
        type=Path,
        default=INSTALL_DIR,
        help="where the other stores are installed (benchmarks/store/.alternatives)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="parent of the work dir")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--results", type=Path, default=RESULTS_FILE)
    args = parser.parse_args(argv)
    args.only = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = [key for key in args.only if key not in CONTENDERS]
    if unknown or not args.only:
        parser.error(
            f"--only takes some of {', '.join(CONTENDERS)}; got {', '.join(unknown) or 'none'}"
        )
    if (
        min(args.rounds, args.clients, args.seconds) <= 0
        or min(args.warmup, args.drain_seconds) < 0
    ):
        parser.error(
            "--rounds, --clients and --seconds must be > 0, --warmup and --drain-seconds >= 0"
        )
    return args


REPORT_ROWS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("start to ready, s", lambda m: f"{m['start_s']:.2f}"),
    ("RSS idle, MB", lambda m: f"{m['rss_idle_mb']:.0f}"),
    ("stored under load, spans/s", lambda m: f"{m['spans_per_s']:,.0f}"),
    ("acknowledged under load, spans/s", lambda m: f"{m['acknowledged_per_s']:,.0f}"),
    ("store CPU under load, cores", lambda m: f"{m['store_cpu_share']:.2f}"),
    ("store CPU a stored span, µs", lambda m: _maybe(m["store_cpu_us_per_stored_span"])),
    ("acknowledged, not stored, at stop", lambda m: f"{m['waiting_at_end']:,.0f}"),
    ("then stored, spans/s (over s)", lambda m: _drained(m)),
    ("stored, load and drain, spans/s", lambda m: f"{m['sustained_spans_per_s']:,.0f}"),
    ("spans held at the end", lambda m: f"{m['held_at_end']:,.0f}"),
    ("RSS at the end, MB (peak)", lambda m: f"{m['rss_end_mb']:.0f} ({m['peak_rss_mb']:.0f})"),
]
# o11ykit's figure over the other's: more than 1 is more spans, or more seconds and MB.
RATIO_ROWS = [
    ("o11ykit ÷ it: stored, load and drain", "sustained_spans_per_s"),
    ("o11ykit ÷ it: start to ready", "start_s"),
    ("o11ykit ÷ it: RSS at the end", "rss_end_mb"),
]


def print_report(report: dict[str, Any], results: Path) -> None:
    env, load = report["environment"], report["loadavg_1_5_15"]
    print(
        f"\n{env['date']}  cpus={env['cpus']}  python {env['python']}  wall "
        f"{report['wall_seconds']} s  load avg (1 min) {load['start'][0]:.2f} -> "
        f"{load['end'][0]:.2f}  (medians of {report['settings']['rounds']} rounds)"
    )
    stores = report["stores"]
    rows = [("", [entry["name"] for entry in stores.values()])]
    rows.append(("version", [entry["version"] for entry in stores.values()]))
    rows += [(label, [show(e["medians"]) for e in stores.values()]) for label, show in REPORT_ROWS]
    if "o11ykit" in stores and len(stores) > 1:
        ours = stores["o11ykit"]["medians"]
        for label, figure in RATIO_ROWS:
            ratios = [_ratio(ours[figure], e["medians"][figure]) for e in stores.values()]
            rows.append((label, ratios))
    label_width = max(len(label) for label, _ in rows)
    widths = [max(len(values[i]) for _, values in rows) for i in range(len(stores))]
    for label, values in rows:
        cells = "  ".join(f"{v:>{w}}" for v, w in zip(values, widths, strict=True))
        print(f"{label:<{label_width}}  {cells}")
    for entry in report["not_measured"].values():
        print(f"not measured: {entry['name']}: {entry['why']}")
    print("\nas quoted in the store's issue, measured elsewhere:")
    for other in ELSEWHERE:
        print(
            f"  {other['what']:<28} ~{other['spans_per_s']:,} spans/s ingest, "
            f"{other['start_s']} s start, {other['rss_mb']} MB RSS"
        )
    print(f"\nresults: {results}\ncommand: {report['command']}")


def _drained(m: dict[str, Any]) -> str:
    if not m["waiting_at_end"]:
        return "-"
    return f"{_maybe(m['drain_spans_per_s'])} ({m['drain_s']:.1f})"


def _maybe(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs:
        return "-"
    return f"{ours / theirs:,.2f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run_and_record(
        "benchmarks.store.alternatives",
        args,
        measure,
        described={"environment": environment(), "quoted_elsewhere": ELSEWHERE},
    )
    print_report(report, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
