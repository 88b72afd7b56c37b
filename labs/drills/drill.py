"""A drill on a running sample stack: the facilitator starts it, participants' commands
act on it, and every command first brings it up to date (`tick`): timeline changes that
are due are applied, and once a team has mitigated, recovery is checked in the traces.
Everything that happens goes to the log before the command returns."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from labs import grading, model
from labs.drills import scenario as scenarios
from labs.drills import telemetry
from labs.drills.journal import DrillLog
from labs.drills.state import DrillState, replay
from o11ykit.backends.jaeger_query import JaegerQuery
from sample_app.control import StackFaults
from sample_app.faults import catalogue


def _said(value: Any) -> bool:
    """Whether a diagnosis's field says anything: a blank text or attribute does not."""
    if isinstance(value, dict):
        return any(str(key).strip() for key in value)
    return value is not None and str(value).strip() != ""


class DrillError(RuntimeError):
    """A drill command that cannot be carried out; nothing was changed or logged."""


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
        self.stack_state = stack_state
        self.directory = Path(stack_state["data_dir"]) / DRILL_DIR
        self.log = DrillLog(self.directory / JOURNAL)
        self.faults = StackFaults.from_state(stack_state)
        self.query = JaegerQuery(stack_state["query_url"])

    @property
    def state(self) -> DrillState:
        return replay(self.log.events())

    @property
    def scenario(self) -> scenarios.Scenario:
        name = self.state.scenario
        if name is None:
            raise DrillError("no drill has been started here: `o11ykit drill start`")
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
            raise DrillError(
                f"time_scale {time_scale!r}: a speed factor more than 0 (2: twice as fast)"
            )
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
        """The scenario a start with these arguments would run; DrillError (KeyError for an
        unknown scenario) if it would be refused."""
        running = self.running
        if running is not None:
            raise DrillError(f"a drill ({running}) is running: `o11ykit drill end` first")
        chosen = scenarios.get(name)
        if not teams or len(set(teams)) != len(teams):
            raise DrillError("give each team a distinct name, e.g. --teams red,blue")
        return chosen

    def tick(self, now: float | None = None) -> list[str]:
        """Apply what is due; check recovery. Returns what happened, for the facilitator."""
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
                happened.append(f"injected {change.fault}")
            ends = None if change.duration_s is None else due + change.duration_s / state.time_scale
            if (
                index in state.applied
                and index not in state.cleared
                and ends is not None
                and clock >= ends
            ):
                self.faults.clear(change.fault)
                self.log.append("change_applied", index=index, fault=change.fault, action="clear")
                happened.append(f"cleared {change.fault}")
        state = self.state
        if state.mitigated is not None and state.recovered is None:
            window = float(started["recovery_window_s"])
            if now - state.mitigated >= window:
                health = telemetry.health(self.query, self.scenario, telemetry.at(now), window)
                if health.healthy:
                    self.log.append("recovered", health=health.describe())
                    happened.append("recovery verified: " + health.describe())
        return happened

    def end(self) -> None:
        for change in self.scenario.timeline:
            self.faults.clear(change.fault)
        self.log.append("ended")

    # ---- participants -------------------------------------------------------------------------

    def _team(self, team: str) -> None:
        state = self.state
        if state.started is None or state.ended is not None:
            raise DrillError("no drill is running")
        if team not in state.teams:
            raise DrillError(f"no team {team!r}; the teams are: {', '.join(state.teams)}")

    def acknowledge(self, team: str) -> None:
        self.tick()
        self._team(team)
        self.log.append("ack", team=team)

    def diagnose(self, team: str, answer: dict[str, Any]) -> grading.Grade:
        """Grade and log a diagnosis; one that says nothing is refused, not counted."""
        self.tick()
        self._team(team)
        if not any(_said(value) for value in answer.values()):
            raise DrillError(
                "a diagnosis needs at least one of --service, --operation, --attr KEY=VALUE,"
                " --class or --version"
            )
        result = grading.grade(self.scenario.key, answer)
        self.log.append(
            "diagnosis", team=team, answer=answer, score=result.score, correct=result.correct
        )
        return result

    def mitigate(self, team: str, name: str) -> str:
        """Flip the fix switch the mitigation names, if its fault is there to fix."""
        self.tick()
        self._team(team)
        by_name = {f.mitigation: f for f in catalogue.FAULTS}
        if name not in by_name:
            raise DrillError(f"no mitigation {name!r}; accepted: {', '.join(sorted(by_name))}")
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
        return (
            f"{name}: applied ({fault.fix})"
            if effective
            else f"{name}: nothing to change; that part of the system is healthy"
        )

    # ---- afterwards ---------------------------------------------------------------------------

    def impact(self) -> telemetry.Impact:
        state = self.state
        if state.incident_started is None:
            raise DrillError("the incident has not started yet")
        end = state.recovered or state.ended or time.time()
        return telemetry.impact(
            self.query,
            (telemetry.at(state.incident_started), telemetry.at(end)),
            before=telemetry.at(state.started),
        )

    def now(self) -> datetime:
        return datetime.now(timezone.utc)
