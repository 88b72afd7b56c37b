"""A drill's scenario: a timeline of fault changes, the briefing participants see, and the
answer key only the facilitator sees. From a replay file (`scenarios/<id>.yaml`), or one
catalogue fault (`fault:<id>`)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from labs.drills.catalogue_ja import fault_text
from labs.model import (
    SCOPE_FIELDS,
    AnswerKey,
    LabError,
    Text,
    parse_answer_key,
    parse_scope,
    parse_text,
    refuse_unknown,
    with_japanese_names,
)
from sample_app.faults import catalogue

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"


@dataclass(frozen=True)
class Change:
    at_s: float
    fault: str
    overrides: dict[str, Any] = field(default_factory=dict)
    duration_s: float | None = None  # cleared after this long (red herrings come and go)
    red_herring: bool = False


@dataclass(frozen=True)
class Recovery:
    """Healthy means: the gateway's error rate and p95 under these for `window_s` seconds,
    and the root cause's own signal gone."""

    error_rate: float = 0.02
    p95_ms: float = 1000.0
    window_s: float = 30.0


@dataclass(frozen=True)
class Scenario:
    id: str
    title: Text
    briefing: Text
    timeline: tuple[Change, ...]
    root_cause: str
    key: AnswerKey
    mitigation: str
    recovery: Recovery = Recovery()

    @property
    def root_fault(self) -> catalogue.Fault:
        return catalogue.get(self.root_cause)


def _recovery(where: str, raw: dict | None) -> Recovery:
    raw = raw or {}
    refuse_unknown(where, raw, ("error_rate", "p95_ms", "window_s"))
    return Recovery(**raw)


# A timeline change's own fields; the rest of what it accepts is its fault's scope.
CHANGE_FIELDS = ("at_s", "inject", "duration_s", "red_herring")


def _change(where: str, raw: dict) -> Change:
    if not isinstance(raw, dict):
        raise LabError(f"{where}: a mapping with inject and at_s")
    refuse_unknown(where, raw, CHANGE_FIELDS + SCOPE_FIELDS)
    fault = raw.get("inject")
    if fault not in catalogue.BY_ID:
        raise LabError(f"{where}.inject: {fault!r} is not in the catalogue")
    scope = {name: value for name, value in raw.items() if name not in CHANGE_FIELDS}
    duration = raw.get("duration_s")
    return Change(
        at_s=float(raw.get("at_s", 0)),
        fault=fault,
        duration_s=None if duration is None else float(duration),
        red_herring=bool(raw.get("red_herring", False)),
        overrides=parse_scope(where, fault, scope),
    )


def load(path: Path) -> Scenario:
    where = path.name
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise LabError(f"{where}: not a mapping")
    refuse_unknown(where, raw, ("id", "title", "briefing", "timeline", "key", "recovery"))
    timeline = [
        _change(f"{where}.timeline[{number}]", step)
        for number, step in enumerate(raw.get("timeline") or (), 1)
    ]
    key = raw.get("key") or {}
    root = key.get("root_cause")
    if root not in {change.fault for change in timeline}:
        raise LabError(f"{where}.key.root_cause: {root!r} is not injected by the timeline")
    mitigations = {f.mitigation for f in catalogue.FAULTS}
    if key.get("mitigation") not in mitigations:
        raise LabError(f"{where}.key.mitigation: accepted: {', '.join(sorted(mitigations))}")
    return Scenario(
        id=raw["id"],
        title=parse_text(f"{where}.title", raw.get("title")),
        briefing=parse_text(f"{where}.briefing", raw.get("briefing")),
        timeline=tuple(sorted(timeline, key=lambda c: c.at_s)),
        root_cause=root,
        key=with_japanese_names(
            parse_answer_key(f"{where}.key.answer", key.get("answer") or {}), root
        ),
        mitigation=key["mitigation"],
        recovery=_recovery(f"{where}.recovery", raw.get("recovery")),
    )


def from_fault(fault_id: str) -> Scenario:
    """A one-fault drill from the catalogue: its story is the briefing."""
    fault = catalogue.get(fault_id)
    ja = fault_text(fault, "ja")
    expected = {"service": fault.signals[0].service, "fault_class": fault.fault_class}
    return Scenario(
        id=f"fault:{fault.id}",
        title=Text(fault.title, ja.title),
        briefing=Text(fault.story, ja.story),
        timeline=(Change(0.0, fault.id),),
        root_cause=fault.id,
        key=AnswerKey(("service", "fault_class"), expected, (*fault.aliases, *fault.aliases_ja)),
        mitigation=fault.mitigation,
    )


@cache
def shipped() -> tuple[Scenario, ...]:
    return tuple(load(path) for path in sorted(SCENARIOS_DIR.glob("*.yaml")))


def get(name: str) -> Scenario:
    if name.startswith("fault:"):
        return from_fault(name.removeprefix("fault:"))
    for scenario in shipped():
        if scenario.id == name:
            return scenario
    raise KeyError(
        f"no scenario {name!r}; shipped: {', '.join(s.id for s in shipped())}, "
        "or fault:<catalogue id>"
    )


def pick(seed: int) -> Scenario:
    """A scenario chosen at random (by seed) among the shipped ones and the catalogue's."""
    choices = [s.id for s in shipped()] + [f"fault:{f.id}" for f in catalogue.FAULTS]
    return get(random.Random(seed).choice(choices))
