"""The drill's state, rebuilt from its log: what has happened, to whom, and when."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Team:
    name: str
    acknowledged: float | None = None
    diagnosed: float | None = None  # the first correct diagnosis
    wrong_answers: int = 0
    mitigated: float | None = None  # the first mitigation that addressed the root cause
    mitigations: list[str] = field(default_factory=list)


@dataclass
class DrillState:
    scenario: str | None = None
    seed: int = 0
    time_scale: float = 1.0
    baseline_s: float = 0.0  # healthy seconds before the timeline's first change
    started: float | None = None
    incident_started: float | None = None  # the first fault injected
    applied: set[int] = field(default_factory=set)  # timeline changes applied (inject)
    cleared: set[int] = field(default_factory=set)  # timeline changes cleared again
    teams: dict[str, Team] = field(default_factory=dict)
    mitigated: float | None = None
    recovered: float | None = None
    ended: float | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def since_start(self, moment: float | None) -> float | None:
        return None if moment is None or self.started is None else moment - self.started

    def incident_window(self, now: float) -> tuple[float, float] | None:
        """From the first fault injected to recovery, else the drill's end, else `now`;
        None before any fault."""
        if self.incident_started is None:
            return None
        return self.incident_started, self.recovered or self.ended or now


def replay(events: list[dict[str, Any]]) -> DrillState:
    state = DrillState(events=events)
    for event in events:
        kind, t = event["event"], event["t"]
        team = state.teams.get(event.get("team", ""))
        if kind == "drill_started":
            state.scenario, state.seed = event["scenario"], event["seed"]
            state.time_scale, state.started = event["time_scale"], t
            state.baseline_s = float(event.get("baseline_s", 0.0))
            state.teams = {name: Team(name) for name in event["teams"]}
        elif kind == "change_applied":
            target = state.applied if event["action"] == "inject" else state.cleared
            target.add(event["index"])
            if event["action"] == "inject" and state.incident_started is None:
                state.incident_started = t
        elif kind == "ack" and team and team.acknowledged is None:
            team.acknowledged = t
        elif kind == "diagnosis" and team:
            if event["correct"] and team.diagnosed is None:
                team.diagnosed = t
            elif not event["correct"]:
                team.wrong_answers += 1
        elif kind == "mitigation" and team:
            team.mitigations.append(event["name"])
            if event["addresses_root_cause"] and team.mitigated is None:
                team.mitigated = t
                state.mitigated = state.mitigated or t
        elif kind == "recovered" and state.recovered is None:
            state.recovered = t
        elif kind == "ended":
            state.ended = t
    return state


def scoreboard(state: DrillState) -> list[dict[str, Any]]:
    """One row per team: seconds from the drill's start to each milestone."""
    rows = []
    for team in state.teams.values():
        rows.append(
            {
                "team": team.name,
                "acknowledged_s": state.since_start(team.acknowledged),
                "diagnosed_s": state.since_start(team.diagnosed),
                "wrong_answers": team.wrong_answers,
                "mitigated_s": state.since_start(team.mitigated),
                "recovered_s": state.since_start(state.recovered) if team.mitigated else None,
            }
        )
    # Best first: mitigated earliest, then diagnosed earliest, then fewest wrong answers.
    big = float("inf")
    rows.sort(key=lambda r: (r["mitigated_s"] or big, r["diagnosed_s"] or big, r["wrong_answers"]))
    return rows
