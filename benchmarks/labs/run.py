"""Labs benchmark: time from `lab start` to the first signal a solver can find.

Run from the repository root:  ``.venv/bin/python -m benchmarks.labs.run``

One sample stack (``sample_app.stack.Stack``: the local store and five services on
127.0.0.1, free ports, SQLite on a data dir seeded once) serves every lab. For each lab in
``labs.model.all_labs()`` that has a fault, in lab order:

* t0 = the ``LabSession(lab, stack.state()).inject()`` call;
* then traffic, driven two ways, both for every lab, in turn (side by side):
  - *rounds*: the lab's own traffic in 1 s rounds in this process
    (``sample_app.traffic.run(session.traffic_config(1.0, seed=round))``), the solver after
    each round;
  - *background*: what ``lab start`` runs, one traffic process for the whole lab
    (``session.start_background_traffic()``, the same config as one long run), the solver
    once a second;
* the solver is ``labs.solvers.SOLVERS[lab.id](query, t0, now)``: it reads the store the
  way a learner's tools do and knows nothing of the fault;
* "start to first signal" is the time from t0 until the solver first returns an answer;
  the answer is graded against the lab's key (count excepted: its truth is the solver's
  own). If it is wrong, the solver is asked on until an answer is right, and that time is
  kept too; ``--max-seconds`` (40) bounds both;
* the fault is cleared and the runner waits the fault's settle time before the next run.

A separate row times one cold ``lab start`` (no stack running: ``Stack.start()`` + inject,
then 1 s rounds to the first answer), before the per-lab rows, on the stack they then use.

It prints a table and writes ``results-latest.json`` next to this file (or ``--results``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.common import run_and_record
from benchmarks.stack.run import (
    environment,
    print_footer,
    print_header,
    quiet,
    spread,
    timed_seed,
)
from labs import grading, model, solvers
from labs.session import LabSession
from o11ykit.backends.jaeger_query import JaegerQuery
from sample_app.stack import Stack, StackConfig
from sample_app.traffic import run as run_traffic

HERE = Path(__file__).resolve().parent
RESULTS_FILE = HERE / "results-latest.json"
TARGETS = {"start_to_first_signal_s": 15.0}
ROUND_S = 1.0


def now() -> datetime:
    return datetime.now(timezone.utc)


def load_labs() -> tuple[list[model.Lab], list[dict[str, str]]]:
    """all_labs(); if one file does not load (being written), the rest, with its error."""
    try:
        return list(model.all_labs()), []
    except model.LabError:
        pass
    found, broken = [], []
    for path in sorted(model.LABS_DIR.glob("*/lab.yaml")):
        try:
            found.append(model.load(path))
        except model.LabError as exc:
            broken.append({"lab": path.parent.name, "error": str(exc)})
    return sorted(found, key=lambda lab: lab.order), broken


def grade_fields(lab: model.Lab, answer: dict[str, Any]) -> dict[str, Any]:
    """The answer against the lab's key, without `count` (its truth is the solver's own)."""
    try:
        graded = grading.grade(lab.answer, answer, None)
    except Exception as exc:  # grading is being changed by others; keep the timing
        return {"error": f"{type(exc).__name__}: {exc}", "correct": None}
    fields = {f.field: f.credit for f in graded.fields if f.field != "count"}
    return {"fields": fields, "correct": all(credit == 1 for credit in fields.values())}


class Rounds:
    """The brief's drive: the lab's traffic in 1 s rounds in this process, seed = round."""

    name = "rounds"

    def __init__(self, session: LabSession, max_seconds: float) -> None:
        self.session = session
        self.steps: list[dict[str, Any]] = []

    def step(self) -> None:
        summary = run_traffic(self.session.traffic_config(ROUND_S, seed=len(self.steps) + 1))
        self.steps.append(
            {"requests": summary.total, "errors": summary.errors, "cancelled": summary.cancelled}
        )

    def stop(self) -> None:
        pass

    def requests(self) -> int | None:
        return sum(s["requests"] for s in self.steps)


class Background:
    """What `lab start` runs: one traffic process for the whole lab
    (`LabSession.start_background_traffic`); the solver is asked once a second."""

    name = "background"

    def __init__(self, session: LabSession, max_seconds: float) -> None:
        self.started = time.monotonic()
        self.pid = session.start_background_traffic(seconds=max_seconds + 10)
        self.steps: list[dict[str, Any]] = []

    def step(self) -> None:
        time.sleep(max(0.0, self.started + ROUND_S * (len(self.steps) + 1) - time.monotonic()))
        self.steps.append({})

    def stop(self) -> None:
        """SIGTERM the traffic process started above (it ends with a summary), then reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(self.pid, os.WNOHANG)[0] == self.pid:
                    return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)

    def requests(self) -> int | None:
        return None  # counted by the traffic process itself (logs/lab-traffic.log)


DRIVES: tuple[type[Rounds] | type[Background], ...] = (Rounds, Background)


def until_answered(
    lab: model.Lab, drive: Rounds | Background, query: JaegerQuery, started: float,
    since: datetime, max_seconds: float,
) -> dict[str, Any]:  # fmt: skip
    """Drive a step, ask the solver, until it answers right or time runs out.

    "first signal" is the first answer of any kind, as the brief defines it; the first
    answer the key grades right (count excepted) is kept beside it.
    """
    solver = solvers.SOLVERS[lab.id]
    first: dict[str, Any] | None = None
    right_s: float | None = None
    asked: list[dict[str, float]] = []
    while time.monotonic() - started < max_seconds:
        drive.step()
        solving = time.monotonic()
        answer = solver(query, since, now())
        at = time.monotonic() - started
        asked.append({"solver_s": round(time.monotonic() - solving, 3), "at_s": round(at, 3)})
        if answer is None:
            continue
        grade = grade_fields(lab, answer)
        if first is None:
            first = {"seconds": at, "answer": answer, "grade": grade, "round": len(asked)}
        if grade.get("correct") is not False:
            right_s = at if grade.get("correct") else None
            break
    return {
        "seconds": first["seconds"] if first else None,
        "answered": first is not None,
        "rounds": first["round"] if first else len(asked),
        "right_seconds": right_s,
        "first": first,
        "asked": len(asked),
        "requests": drive.requests(),
        "solver_s_max": max((a["solver_s"] for a in asked), default=None),
        "per_step": [{**a, **s} for a, s in zip(asked, drive.steps, strict=False)],
    }


def settle(session: LabSession, lab: model.Lab) -> None:
    with contextlib.suppress(Exception):
        session.faults.clear(lab.fault)
    fault = lab.catalogue_fault
    time.sleep(fault.settle_s if fault is not None else 0.0)


def play(
    stack: Stack, lab: model.Lab, drive_class: type[Rounds] | type[Background], max_seconds: float
) -> dict[str, Any]:
    session = LabSession(lab, stack.state())
    query = JaegerQuery(stack.query_url)
    row: dict[str, Any] = {"lab": lab.id, "fault": lab.fault, "drive": drive_class.name}
    drive = None
    try:
        since = now()
        started = time.monotonic()
        session.inject()
        row["inject_s"] = time.monotonic() - started
        drive = drive_class(session, max_seconds)
        row.update(until_answered(lab, drive, query, started, since, max_seconds))
    except Exception as exc:  # one lab's failure must not lose the others' figures
        row.update(error=f"{type(exc).__name__}: {exc}", answered=False, seconds=None)
    finally:
        if drive is not None:
            drive.stop()
        settle(session, lab)
    return row


def cold_lab(directory: Path, lab: model.Lab, max_seconds: float) -> tuple[Stack, dict[str, Any]]:
    """`lab start` with no stack running; returns the started stack for the warm rows."""
    stack = Stack(StackConfig(data_dir=directory, free_ports=True))
    row: dict[str, Any] = {"lab": lab.id, "fault": lab.fault, "drive": Rounds.name}
    try:
        since = now()
        started = time.monotonic()
        stack.start(progress=quiet)
        row["stack_start_s"] = time.monotonic() - started
        session = LabSession(lab, stack.state())
        session.inject()
        row["lab_start_s"] = time.monotonic() - started
        drive = Rounds(session, max_seconds)
        query = JaegerQuery(stack.query_url)
        row.update(until_answered(lab, drive, query, started, since, max_seconds))
        settle(session, lab)
    except BaseException:
        stack.stop()
        raise
    return stack, row


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-seconds", type=float, default=40.0, help="give up on a lab's signal after this"
    )
    parser.add_argument("--labs", default="", help="comma-separated lab ids (default: all)")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the work dir")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--results", type=Path, default=RESULTS_FILE)
    return parser.parse_args(argv)


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    every, broken = load_labs()
    chosen = {name for name in args.labs.split(",") if name}
    every = [lab for lab in every if not chosen or lab.id in chosen]
    playable = [lab for lab in every if lab.fault and lab.id in solvers.SOLVERS]
    skipped = [
        {"lab": lab.id, "why": "no fault" if not lab.fault else "no solver"}
        for lab in every
        if lab not in playable
    ] + [{"lab": b["lab"], "why": f"does not load: {b['error']}"} for b in broken]
    results: dict[str, Any] = {
        "labs_found": [lab.id for lab in every],
        "lab_files": len(list(model.LABS_DIR.glob("*/lab.yaml"))),
        "skipped": skipped,
    }
    if not playable:
        raise SystemExit("no lab with a fault and a solver to measure")
    directory = work / "sqlite"
    print("seed SQLite ...", flush=True)
    results["seed"] = timed_seed(directory)
    print(f"  done in {results['seed']['seconds']:.1f} s", flush=True)
    print(f"cold lab start ({playable[0].id}) ...", flush=True)
    stack, cold = cold_lab(directory, playable[0], args.max_seconds)
    results["cold"] = cold
    _print_row("  (cold) " + cold["lab"], cold)
    try:
        rows: dict[str, list[dict[str, Any]]] = {d.name: [] for d in DRIVES}
        for number, lab in enumerate(playable):
            # Both drives for each lab, in turn, first one then the other: drift hits both.
            for drive in DRIVES if number % 2 == 0 else DRIVES[::-1]:
                row = play(stack, lab, drive, args.max_seconds)
                _print_row(f"  {lab.id} [{drive.name}]", row)
                rows[drive.name].append(row)
    finally:
        stack.stop()
    results["labs"] = {name: summarise(found) for name, found in rows.items()}
    return results


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answered = [r["seconds"] for r in rows if r.get("seconds") is not None]
    return {"rows": rows, **spread(answered), "all_answered": all(r["answered"] for r in rows)}


def _print_row(label: str, row: dict[str, Any]) -> None:
    shown = f"{row['seconds']:.1f} s" if row.get("seconds") is not None else "no answer"
    if "error" in row:
        shown = row["error"]
    right = row.get("right_seconds")
    wrong = row.get("answered") and right is None
    extra = f", right at {right:.1f} s" if right is not None and right != row["seconds"] else ""
    print(
        f"{label:<40} {shown}{extra}{'  (never right)' if wrong else ''}  "
        f"solver calls={row.get('asked')}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run_and_record(
        "benchmarks.labs.run",
        args,
        measure,
        described={"environment": environment(), "targets": TARGETS},
    )
    print_report(report, args.results)
    return 0


def _seconds(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "none"


def _verdict(seconds: float | None, target: float) -> str:
    if seconds is None:
        return "MISSES TARGET (no answer)"
    return "ok" if seconds <= target else f"MISSES TARGET (+{seconds - target:.1f} s)"


def _answer_word(row: dict[str, Any]) -> str:
    first = row.get("first")
    if not first:
        return "none"
    return {True: "right", False: "WRONG", None: "?"}[first["grade"].get("correct")]


def print_report(report: dict[str, Any], results: Path) -> None:
    print_header(report)
    target = TARGETS["start_to_first_signal_s"]
    print(f"lab files: {report['lab_files']}; labs: {', '.join(report['labs_found'])}")
    for skip in report["skipped"]:
        print(f"  skipped {skip['lab']}: {skip['why']}")
    names = list(report["labs"])
    by_lab: dict[str, dict[str, dict[str, Any]]] = {}
    for name in names:
        for row in report["labs"][name]["rows"]:
            by_lab.setdefault(row["lab"], {})[name] = row
    print(f"\nstart to first signal, s (first answer; first right answer); target <= {target:g} s")
    print(f"{'lab':<22} {'fault':<16} " + " ".join(f"{n:<44}" for n in names))
    for lab, rows in by_lab.items():
        cells = []
        for name in names:
            row = rows.get(name, {})
            right = row.get("right_seconds")
            cell = (
                f"{_seconds(row.get('seconds'))} {_answer_word(row)}; right {_seconds(right)}"
                f"  {_verdict(row.get('seconds'), target)}"
            )
            cells.append(f"{cell:<44}")
        print(f"{lab:<22} {(next(iter(rows.values()))['fault'] or ''):<16} " + " ".join(cells))
        for row in rows.values():
            if "error" in row:
                print(f"    [{row['drive']}] {row['error']}")
    for name in names:
        labs = report["labs"][name]
        print(
            f"{name}: median {_seconds(labs['median_s'])} / max {_seconds(labs['max_s'])} s over "
            f"{labs['n']} answered of {len(labs['rows'])}"
        )
    cold = report["cold"]
    print(
        f"cold lab start ({cold['lab']}): stack start {cold['stack_start_s']:.2f} s, "
        f"start + inject {cold['lab_start_s']:.2f} s, to first signal "
        f"{_seconds(cold.get('seconds'))} s"
    )
    print_footer(report, results)


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted; child processes stopped", file=sys.stderr)
        raise SystemExit(130) from None
