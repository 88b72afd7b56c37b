"""A drill on a running sample stack: the facilitator starts it, participants' commands
act on it, and every command first brings it up to date (`tick`): timeline changes that
are due are applied, and once a team has mitigated, recovery is checked in the traces.
Everything that happens goes to the log before the command returns."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from labs import grading, model
from labs.drills import scenario as scenarios
from labs.drills import telemetry
from labs.drills.catalogue_ja import fault_text
from labs.drills.journal import DrillLog
from labs.drills.state import DrillState, replay
from labs.drills.words import say
from o11ykit.backends.jaeger_query import JaegerQuery
from sample_app.control import StackFaults
from sample_app.faults import catalogue


def _said(value: Any) -> bool:
    """Whether a diagnosis's field says anything: a blank text or attribute does not."""
    if isinstance(value, dict):
        return any(str(key).strip() for key in value)
    return value is not None and str(value).strip() != ""


class DrillError(RuntimeError):
    """A drill command that cannot be carried out; nothing was changed or logged.
    Its message is WORDS' `key` (labs.drills.words): English as a string, `said` any language."""

    def __init__(self, key: str, **fields: object) -> None:
        super().__init__(say("en", key, **fields))
        self.key, self.fields = key, fields

    def said(self, language: str) -> str:
        return say(language, self.key, **self.fields)


def _unknown_scenario(name: str) -> DrillError:
    if name.startswith("fault:"):
        fault = repr(name.removeprefix("fault:"))
        return DrillError("no_such_fault", fault=fault, faults=", ".join(catalogue.BY_ID))
    shipped = ", ".join(s.id for s in scenarios.shipped())
    return DrillError("no_such_scenario", name=repr(name), shipped=shipped)


DRILL_DIR = "drill"  # in the stack's data directory
JOURNAL = "events.jsonl"


def running_drill(data_dir: str | Path) -> str | None:
    """The scenario of the drill running on the system in `data_dir` (started, not ended),
    or None; read from its journal alone, so it answers on any stack (one exporting
    elsewhere has no query URL for a Drill)."""
    state = replay(DrillLog(Path(data_dir) / DRILL_DIR / JOURNAL).events())
    return state.scenario if state.started is not None and state.ended is None else None


class Drill:
    def __init__(self, stack_state: dict[str, Any]) -> None:
        # Recovery, impact and the postmortem are read from the local store's traces.
        if not stack_state.get("query_url"):
            raise DrillError("exports_elsewhere")
        self.stack_state = stack_state
        self.directory = Path(stack_state["data_dir"]) / DRILL_DIR
        self.log = DrillLog(self.directory / JOURNAL)
        self.faults = StackFaults.from_state(stack_state, actor="drill")
        self.query = JaegerQuery(stack_state["query_url"])

    @property
    def state(self) -> DrillState:
        return replay(self.log.events())

    @property
    def scenario(self) -> scenarios.Scenario:
        name = self.state.scenario
        if name is None:
            raise DrillError("never_started")
        return scenarios.get(name)

    @property
    def running(self) -> str | None:
        """The scenario of the drill running here (started and not ended), or None."""
        return running_drill(self.stack_state["data_dir"])

    def _started(self) -> dict[str, Any]:
        return next(e for e in self.log.events() if e["event"] == "drill_started")

    # ---- facilitator ------------------------------------------------------------------------

    def start(
        self,
        name: str,
        teams: list[str],
        *,
        seed: int = 1,
        time_scale: float = 1.0,
        baseline_s: float = 60.0,
        recovery_window_s: float | None = None,
    ) -> scenarios.Scenario:
        chosen = self.check_start(name, teams)
        if not time_scale > 0 or time_scale == float("inf"):
            raise DrillError("bad_time_scale", scale=repr(time_scale))
        if not 0 <= baseline_s < float("inf"):
            raise DrillError("bad_baseline", baseline=repr(baseline_s))
        if self.log.path.exists():
            self.log.path.rename(self.log.path.with_suffix(f".{int(time.time())}.jsonl"))
        self.log.append(
            "drill_started",
            scenario=chosen.id,
            teams=teams,
            seed=seed,
            time_scale=time_scale,
            baseline_s=baseline_s,
            recovery_window_s=recovery_window_s or chosen.recovery.window_s,
        )
        self.tick()
        return chosen

    def check_start(self, name: str, teams: list[str]) -> scenarios.Scenario:
        """The scenario a start with these arguments would run; DrillError if it would be
        refused."""
        running = self.running
        if running is not None:
            raise DrillError("already_running", scenario=running)
        try:
            chosen = scenarios.get(name)
        except KeyError:
            raise _unknown_scenario(name) from None
        if not teams or len(set(teams)) != len(teams):
            raise DrillError("team_names")
        return chosen

    def tick(self, now: float | None = None, language: str = "en") -> list[str]:
        """Apply what is due; check recovery. Returns what happened, for the facilitator,
        in `language`."""
        state = self.state
        if state.started is None or state.ended is not None:
            return []
        now = time.time() if now is None else now
        started = self._started()
        clock = now - state.started - started["baseline_s"]
        happened = []
        # The timeline's seconds are the scenario's; a time scale of 2 plays them twice as fast.
        for index, change in enumerate(self.scenario.timeline):
            due = change.at_s / state.time_scale
            if index not in state.applied and clock >= due:
                self.faults.inject(change.fault, model.overrides(change.overrides))
                self.log.append("change_applied", index=index, fault=change.fault, action="inject")
                happened.append(say(language, "injected", fault=change.fault))
            ends = None if change.duration_s is None else due + change.duration_s / state.time_scale
            if (
                index in state.applied
                and index not in state.cleared
                and ends is not None
                and clock >= ends
            ):
                self.faults.clear(change.fault)
                self.log.append("change_applied", index=index, fault=change.fault, action="clear")
                happened.append(say(language, "cleared", fault=change.fault))
        state = self.state
        if state.mitigated is not None and state.recovered is None:
            window = float(started["recovery_window_s"])
            if now - state.mitigated >= window:
                health = telemetry.health(self.query, self.scenario, telemetry.at(now), window)
                if health.healthy:
                    # Its figures too, for a postmortem in another language than English.
                    self.log.append("recovered", health=health.describe(), measured=asdict(health))
                    happened.append(say(language, "recovered", health=health.describe(language)))
        return happened

    def end(self) -> None:
        for change in self.scenario.timeline:
            self.faults.clear(change.fault)
        self.log.append("ended")

    # ---- participants -------------------------------------------------------------------------

    def _team(self, team: str) -> None:
        state = self.state
        if state.started is None or state.ended is not None:
            raise DrillError("no_drill")
        if team not in state.teams:
            raise DrillError("no_team", team=repr(team), teams=", ".join(state.teams))

    def acknowledge(self, team: str) -> None:
        self.tick()
        self._team(team)
        self.log.append("ack", team=team)

    def diagnose(self, team: str, answer: dict[str, Any]) -> grading.Grade:
        """Grade and log a diagnosis; one that says nothing is refused, not counted."""
        self.tick()
        self._team(team)
        if not any(_said(value) for value in answer.values()):
            raise DrillError("empty_diagnosis")
        result = grading.grade(self.scenario.key, answer)
        self.log.append(
            "diagnosis", team=team, answer=answer, score=result.score, correct=result.correct
        )
        return result

    def mitigate(self, team: str, name: str, language: str = "en") -> str:
        """Flip the fix switch the mitigation names, if its fault is there to fix; returns
        what it did, in `language`."""
        self.tick()
        self._team(team)
        by_name = {f.mitigation: f for f in catalogue.FAULTS}
        if name not in by_name:
            raise DrillError("no_mitigation", name=repr(name), accepted=", ".join(sorted(by_name)))
        fault = by_name[name]
        held = {f["id"] for faults in self.faults.status().values() for f in faults}
        effective = fault.id in held
        if effective:
            self.faults.fix(fault.id)
        self.log.append(
            "mitigation",
            team=team,
            name=name,
            fault=fault.id if effective else None,
            addresses_root_cause=effective and fault.id == self.scenario.root_cause,
        )
        if effective:
            return say(language, "applied", name=name, fix=fault_text(fault, language).fix)
        return say(language, "nothing_to_change", name=name)

    # ---- afterwards ---------------------------------------------------------------------------

    def impact(self) -> telemetry.Impact:
        state = self.state
        window = state.incident_window(time.time())
        if window is None:
            raise DrillError("not_started")
        start, end = window
        return telemetry.impact(
            self.query, (telemetry.at(start), telemetry.at(end)), before=telemetry.at(state.started)
        )

    def now(self) -> datetime:
        return datetime.now(timezone.utc)
