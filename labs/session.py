"""Playing a lab on a running sample stack: inject its fault, drive traffic, show each
step's look for the chosen backend, hand out hints, grade answers, prove the cause.

Used by `o11ykit lab`, by the guided tour behind `python3 dev.py start` and by tests.
The learner's progress (hints taken, answers and their scores) is kept in a JSON file
beside the stack's state, so a closed terminal loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from labs import grading, model, solvers
from labs.guide import say
from o11ykit.backends import query_spec
from o11ykit.backends.honeycomb_links import honeycomb_link, link_slugs
from o11ykit.backends.jaeger_query import JaegerQuery
from sample_app.companions import end_companion, register_companion
from sample_app.control import StackFaults
from sample_app.faults import signals
from sample_app.faults.catalogue import Signal

PROGRESS_FILE = "lab.json"
BACKENDS = ("local", "jaeger", "honeycomb")
JAEGER_UI = os.environ.get("O11YKIT_JAEGER_UI", "http://localhost:16686")


# Windows of traffic `prove` sends after the fix, at most, until the signal is measurable.
PROVE_WINDOWS = 4
LAB_TRAFFIC = "lab-traffic"  # its companion name on the stack (sample_app.stack)


class Refused(RuntimeError):
    """A lab command this lab or stack cannot carry out; nothing was changed. Its message
    is WORDS' `key` (labs.guide): English as a string, `said` any language."""

    def __init__(self, key: str, **fields: object) -> None:
        super().__init__(say("en", key, **fields))
        self.key, self.fields = key, fields

    def said(self, language: str) -> str:
        return say(language, self.key, **self.fields)


class CannotProve(Refused):
    """The lab has no fault to prove, or its stack's spans are not in the local store."""


def describe_measurement(measurement: signals.Measurement, language: str = "en") -> str:
    """A signal `prove` measured, for the learner: in English as Measurement.describe() has
    it, in Japanese with the same figures (the scope written KEY=VALUE, as answers are)."""
    signal = measurement.signal
    if language == "en":
        target = f"{signal.service} {signal.operation!r} {signal.where or ''}"
    else:
        where = "".join(f" {key}={value}" for key, value in signal.where.items())
        target = f"{signal.service} {signal.operation!r}{where}"
    value = measurement.value
    return say(
        language,
        "measured",
        measure=signal.measure,
        target=target,
        value=say(language, "no_value") if value is None else f"{value:.3g}",
        threshold=f"{signal.threshold:g}",
        samples=measurement.samples,
    )


def proof_verdict(
    before: list[signals.Measurement],
    after: list[signals.Measurement],
    language: str = "en",
    command: str | None = None,
) -> tuple[bool, str]:
    """Whether the measurements prove the cause, and what to tell the learner: the signal
    must have been there before the fix and be gone after it, each on enough samples.
    `command`: what the learner runs to prove again where they are (None: the tour's)."""
    again = say(language, "run_again", command=command) if command else say(language, "prove_again")
    if not all(m.present for m in before):
        return False, say(language, "not_there_before", again=again)
    if all(m.absent for m in after):
        return True, say(language, "gone")
    if not all(m.conclusive for m in after):
        return False, say(language, "too_few_after", least=signals.MIN_SAMPLES, again=again)
    return False, say(language, "still_there", again=again)


@dataclass
class EarlierLab:
    """The lab started on the stack before the one starting now."""

    lab_id: str
    fault: str | None  # None also for a lab id this version does not know
    stopped: datetime | None  # when its traffic ended; None: not known
    stopped_now: bool  # its traffic was still running and was ended just now
    known: bool = True  # a lab of this version (else its fault could not be cleared)

    def stopped_text(self, language: str = "en") -> str | None:
        """What stopping it did, to say once; None when nothing of it was running."""
        if not self.stopped_now:
            return None
        return say(language, "stopped_lab" if self.known else "ended_unknown", lab=self.lab_id)


def stop_earlier_lab(
    state: dict[str, Any], starting: str | None, backend: str = "local"
) -> EarlierLab | None:
    """The lab last started on this stack, when it is not `starting` (None: a drill starts):
    stopped first if it still runs (fault cleared, traffic ended), so that two faults never
    mix. Without it, the new lab's progress file forgot the old one's traffic, which ran on
    for its hour, and the old fault stayed injected under the new lab."""
    try:
        saved = json.loads((Path(state["data_dir"]) / PROGRESS_FILE).read_text())
        lab_id = str(saved["lab"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    if lab_id == starting:
        return None
    try:
        lab = model.get(lab_id)
    except KeyError:  # renamed or gone since: its traffic can still be ended
        running = end_lab_traffic(state["data_dir"], saved.get("traffic_pid"))
        return EarlierLab(lab_id, None, None, stopped_now=running, known=False)
    if saved.get("stopped"):
        with contextlib.suppress(ValueError, TypeError):
            stopped = datetime.fromisoformat(saved["stopped"])
            return EarlierLab(lab.id, lab.fault, stopped, stopped_now=False)
    # Not stopped by `lab stop`: still running, or ended with the system (`app down`), or
    # written by a version that did not record the time.
    running = LabSession(lab, state, backend).stop()
    return EarlierLab(lab.id, lab.fault, now() if running else None, stopped_now=running)


def end_lab_traffic(data_dir: str | Path, pid: int | None) -> bool:
    """End the lab traffic process `pid` if the stack still records it as its lab traffic;
    returns whether it did."""
    return bool(pid) and end_companion(data_dir, LAB_TRAFFIC, pid)


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Look:
    """One step's query, as the learner's backend shows it."""

    backend: str
    text: str  # a command to run or a link to open


def render_look(
    spec: query_spec.QuerySpec,
    backend: str,
    at: datetime | None = None,
    query_url: str | None = None,
    language: str = "en",
) -> Look:
    """`query_url`: the local store the command is for, when not the default address;
    `language`: what to say instead of a link that cannot be made."""
    if backend == "jaeger":
        return Look(backend, query_spec.jaeger_link(spec, JAEGER_UI, at))
    if backend == "honeycomb":
        slugs = link_slugs(os.environ)
        if slugs is None:
            return Look(backend, say(language, "honeycomb_unset"))
        team, environment = slugs
        return Look(
            backend,
            honeycomb_link(
                spec,
                team=team,
                environment=environment,
                dataset=os.environ.get("O11YKIT_HONEYCOMB_DATASET", spec.service or "gateway"),
                region=os.environ.get("O11YKIT_HONEYCOMB_REGION", "us"),
                now=at,
            ),
        )
    return Look(backend, query_spec.local_command(spec, query_url))


def lab_mix(fault: Any) -> dict[str, float]:
    """The default persona mix, with the personas that reach the fault's code path ten
    times as frequent: a lab's signal should show within seconds, not minutes."""
    from sample_app.traffic import DEFAULT_MIX

    boosted = set(fault.focus.personas) if fault is not None else set()
    return {name: weight * (10 if name in boosted else 1) for name, weight in DEFAULT_MIX.items()}


def honeycomb_answer(
    spec: query_spec.QuerySpec, environ: Any = None, base_url: str | None = None
) -> dict[str, Any]:
    """The look run through Honeycomb's Query Data API where the team has it (Enterprise);
    otherwise why not, so the learner opens the query-template link instead."""
    from o11ykit.backends.honeycomb_query import QueryDataClient, QueryDataUnavailable
    from o11ykit.config import load_settings

    environ = os.environ if environ is None else environ
    dataset = environ.get("O11YKIT_HONEYCOMB_DATASET", spec.service or "gateway")
    try:
        client = QueryDataClient.from_settings(load_settings(environ=environ), base_url=base_url)
        return {"kind": "honeycomb", "rows": client.run_spec(spec, dataset).rows}
    except QueryDataUnavailable as exc:
        return {"kind": "link only", "reason": exc.reason}


class LabSession:
    def __init__(self, lab: model.Lab, state: dict[str, Any], backend: str = "local") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}; accepted: {', '.join(BACKENDS)}")
        self.lab = lab
        self.state = state
        self.backend = backend
        self.faults = StackFaults.from_state(state, actor=f"lab:{lab.id}")
        self.query = JaegerQuery(state["query_url"]) if state.get("query_url") else None
        self.progress_path = Path(state["data_dir"]) / PROGRESS_FILE
        self.progress = self._load_progress()

    # ---- progress -------------------------------------------------------------------------

    def _load_progress(self) -> dict[str, Any]:
        try:
            saved = json.loads(self.progress_path.read_text())
        except (FileNotFoundError, ValueError):
            saved = {}
        if saved.get("lab") != self.lab.id:
            saved = {
                "lab": self.lab.id,
                "hints": 0,
                "answers": [],
                "started": None,
                "traffic_pid": None,
                "backend": self.backend,
            }
        return saved

    def save(self) -> None:
        tmp = self.progress_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.progress, indent=2))
        os.replace(tmp, self.progress_path)

    # ---- the lab's fault and traffic ------------------------------------------------------

    def inject(self) -> None:
        self.progress.pop("stopped", None)
        fault = self.lab.catalogue_fault
        if fault is not None:
            self.faults.inject(fault.id, model.overrides(self.lab.scope))
        self.progress["started"] = now().isoformat()
        self.save()

    def traffic_config(self, seconds: float, seed: int = 1) -> Any:
        from sample_app.traffic import TrafficConfig

        fault = self.lab.catalogue_fault
        focus = fault.focus if fault is not None else None
        share = float(self.lab.traffic.get("focus_share", 0.3)) if focus and focus.tenant else 0.0
        return TrafficConfig(
            base_url=self.state["services"]["gateway"]["url"],
            rate=float(self.lab.traffic.get("rate", 15)),
            duration_s=seconds,
            seed=seed,
            personas=lab_mix(fault),
            focus_tenant=focus.tenant if share else None,
            focus_user=focus.user if share else None,
            focus_share=share,
            concurrency=10,
        )

    def start_background_traffic(self, seconds: float = 3600) -> int:
        """Traffic for as long as the lab runs, in its own process (`lab stop` ends it)."""
        from sample_app.traffic.cli import command_line

        command = command_line(self.traffic_config(seconds))
        log = (Path(self.state["data_dir"]) / "logs" / "lab-traffic.log").open("ab")
        with log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        self.progress["traffic_pid"] = process.pid
        self.save()
        # `o11ykit app down` without `lab stop` first must not leave it running for an hour.
        register_companion(self.state["data_dir"], LAB_TRAFFIC, process.pid)
        return process.pid

    def stop(self) -> bool:
        """Clear the lab's fault and end its traffic; returns whether the traffic was running.
        The first stop's time is kept as `stopped` (`inject` forgets it)."""
        running = end_lab_traffic(self.state["data_dir"], self.progress.get("traffic_pid"))
        if self.lab.fault:
            self.faults.clear(self.lab.fault)
        self.progress["traffic_pid"] = None
        self.progress.setdefault("stopped", now().isoformat())
        self.save()
        return running

    def looks_window_s(self) -> int:
        """The longest window any of the lab's looks reads back from now (their `since`);
        a look that reads from the lab's start reaches no further back than that."""
        return max(
            (step.look.since_s for step in self.lab.steps if step.look and not step.from_lab_start),
            default=0,
        )

    # ---- what the learner asks for ------------------------------------------------------

    def looks(self) -> list[tuple[model.Step, Look | None]]:
        return [(step, self.look(step)) for step in self.lab.steps]

    def look_spec(self, step: model.Step) -> query_spec.QuerySpec | None:
        """The step's look as this lab reads it: one marked `from_lab_start` begins where the
        grading's window begins (`window`), so its count is the one graded, however long the
        learner took; before the lab starts, and for the other looks, the last since_s."""
        if step.look is None or not step.from_lab_start or not self.progress.get("started"):
            return step.look
        # To the second: the command shows it so, and it must not start after the window.
        begin = self.window()[0].replace(microsecond=0)
        return replace(step.look, start=begin)

    def look(self, step: model.Step, language: str = "en") -> Look | None:
        """The step's look, its command for this stack's store wherever that listens."""
        spec = self.look_spec(step)
        if spec is None:
            return None
        return render_look(
            spec, self.backend, query_url=self.state.get("query_url"), language=language
        )

    def run_look(self, step: model.Step) -> dict[str, Any] | None:
        """The look's answer from the local store, for the terminal walk-through."""
        spec = self.look_spec(step)
        if spec is None or self.query is None:
            return None
        return query_spec.run_local(spec, self.query)

    def hint(self) -> tuple[int, model.Text]:
        taken = min(self.progress["hints"] + 1, len(self.lab.hints))
        self.progress["hints"] = taken
        self.save()
        return taken, self.lab.hints[taken - 1]

    def window(self) -> tuple[datetime, datetime]:
        started = self.progress.get("started")
        begin = datetime.fromisoformat(started) if started else now() - timedelta(minutes=15)
        return begin - timedelta(seconds=1), now() + timedelta(seconds=1)

    def solve(self, window: tuple[datetime, datetime] | None = None) -> solvers.Answer | None:
        """The solver's answer from the local store; Refused on a stack exporting elsewhere."""
        if self.query is None:
            raise Refused("solve_exports_elsewhere")
        return solvers.SOLVERS[self.lab.id](self.query, *(window or self.window()))

    def _count(self, start: datetime, end: datetime) -> float | None:
        """The count the lab asks for, as the traces between `start` and `end` show it."""
        solved = self.solve((start, end))
        return float(solved["count"]) if solved and "count" in solved else None

    def answer(self, given: dict[str, Any]) -> grading.Grade:
        """Grade and record an answer. On a stack exporting elsewhere the count, which only
        the local store can tell, is left out of the grade (its `ungraded`), and the score
        is of the other fields: a learner who read the count in Jaeger or Honeycomb still
        has the rest of the answer checked, and is told the count was not."""
        key, truth, earlier, ungraded = self.lab.answer, None, None, []
        if "count" in key.fields and self.query is None:
            ungraded = ["count"]
            key = replace(key, fields=tuple(f for f in key.fields if f != "count"))
        elif "count" in key.fields:
            start, end = self.window()
            truth = self._count(start, end)
            read = timedelta(seconds=grading.COUNT_READ_S)
            if truth is not None and end - start > read:
                earlier = self._count(start, end - read)
        result = grading.grade(key, given, truth, earlier)
        recorded = {"time": now().isoformat(), "answer": given, "score": result.score}
        if ungraded:
            result.details["ungraded"] = recorded["ungraded"] = ungraded
        self.progress["answers"].append(recorded)
        self.save()
        return result

    def forget_progress(self) -> tuple[int, int]:
        """Forget the hints taken and the answers given (a start afresh); returns how many
        of each there were."""
        forgotten = (self.progress.get("hints", 0), len(self.progress.get("answers", [])))
        self.progress.update(hints=0, answers=[])
        self.save()
        return forgotten

    def prove(
        self, settle_s: float | None = None, window_s: float = 6.0, traffic: bool = True
    ) -> tuple[list[signals.Measurement], list[signals.Measurement]]:
        """Measure the fault's signal, flip its fix switch, measure again: before and after.

        CannotProve for a lab without a fault, or a stack that exports elsewhere."""
        fault = self.lab.catalogue_fault
        if fault is None:
            raise CannotProve("no_fault", lab=self.lab.id)
        if self.query is None:
            raise CannotProve("exports_elsewhere")
        # Before the flip too: proving right after the start, a rare request (a heavy
        # user's, an order history) may not have arrived often enough yet.
        before = self._measure(fault.signals, self.window()[0], window_s, traffic, fresh=False)
        self.faults.fix(fault.id)
        time.sleep(settle_s if settle_s is not None else fault.settle_s)
        after = self._measure(fault.signals, now(), window_s, traffic, fresh=True)
        return before, after

    def _measure(
        self,
        measured: Sequence[Signal],
        since: datetime,
        window_s: float,
        traffic: bool,
        fresh: bool,
    ) -> list[signals.Measurement]:
        """The signals since `since`, with another window of traffic (or of waiting, for
        the background traffic) while too few samples arrived to tell (a heavy user's rare
        requests), up to PROVE_WINDOWS of them; `fresh`: one window first, since nothing has
        come after `since` yet."""
        # The windows after the fix keep the seeds they always had (7 on).
        seed, windows, another = (6 if fresh else 2), 0, fresh
        while True:
            if another:
                windows += 1
                if traffic:
                    from sample_app.traffic import run

                    run(self.traffic_config(window_s, seed=seed + windows))
                else:
                    time.sleep(window_s)
                time.sleep(0.6)
            found = [signals.measure(self.query, s, since, now()) for s in measured]
            if all(m.conclusive for m in found) or windows >= PROVE_WINDOWS:
                return found
            another = True
