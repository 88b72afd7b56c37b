"""A lab as data: `labs/<id>/lab.yaml`, loaded strictly.

Every text a learner reads is given in English and Japanese; a missing translation, an
unknown field or a fault the catalogue does not have is an error at load time, with the
file and the field named, so a broken lab never reaches a workshop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from o11ykit.backends.query_spec import QuerySpec
from o11ykit.faults import FaultSpecError
from sample_app.control import Overrides, build_spec
from sample_app.faults import catalogue

LABS_DIR = Path(__file__).resolve().parent
LANGUAGES = ("en", "ja")
LEVELS = ("first steps", "beginner", "intermediate", "advanced")
ANSWER_FIELDS = ("service", "operation", "attribute", "fault_class", "version", "count")


class LabError(ValueError):
    """A lab file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Text:
    en: str
    ja: str

    def __call__(self, language: str) -> str:
        return self.ja if language == "ja" else self.en


@dataclass(frozen=True)
class Step:
    title: Text
    text: Text
    look: QuerySpec | None = None
    # The look reads from the lab's start, not the last since_s (`from_lab_start: true` in
    # lab.yaml): a count the answer is graded on grows from then (labs.session.look_spec).
    from_lab_start: bool = False


@dataclass(frozen=True)
class AnswerKey:
    fields: tuple[str, ...]
    expected: dict[str, Any]  # service, operation, attribute {key: value}, fault_class, version
    fault_class_aliases: tuple[str, ...] = ()
    count_question: Text | None = None  # what `count` counts; its truth comes from the solver
    count_tolerance: float = 0.25


@dataclass(frozen=True)
class Lab:
    id: str
    order: int
    level: str
    minutes: int
    fault: str | None
    title: Text
    story: Text
    goal: Text
    steps: tuple[Step, ...]
    hints: tuple[Text, ...]
    answer: AnswerKey
    prove: Text
    facilitator: dict[str, Any] = field(default_factory=dict)
    scope: dict[str, Any] = field(default_factory=dict)
    traffic: dict[str, Any] = field(default_factory=dict)
    warmup_s: float = 6.0

    @property
    def catalogue_fault(self) -> catalogue.Fault | None:
        return catalogue.get(self.fault) if self.fault else None

    @property
    def directory(self) -> Path:
        return LABS_DIR / self.id


# YAML folds a line break into a space; between two Japanese characters that space is a
# typo a reader sees, so it goes (a break next to ASCII words stays a space).
_CJK = "\u3000-\u30ff\u3400-\u9fff\uff00-\uffef"
_FOLDED = re.compile(f"(?<=[{_CJK}]) (?=[{_CJK}])")


def _unfold_japanese(text: str) -> str:
    return _FOLDED.sub("", text)


def parse_text(where: str, raw: Any) -> Text:
    """A text in every language, or a LabError naming `where`."""
    if not isinstance(raw, dict) or set(raw) != set(LANGUAGES):
        raise LabError(f"{where}: needs exactly the languages {', '.join(LANGUAGES)}")
    for language in LANGUAGES:
        if not isinstance(raw[language], str) or not raw[language].strip():
            raise LabError(f"{where}.{language}: an empty text")
    return Text(raw["en"].strip(), _unfold_japanese(raw["ja"].strip()))


def refuse_unknown(where: str, raw: dict, accepted: tuple[str, ...]) -> None:
    unknown = sorted(set(raw) - set(accepted))
    if unknown:
        raise LabError(
            f"{where}: unknown field(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}"
        )


# What a lab's `scope` and a drill's timeline change may set about their catalogue fault:
# the facilitator's overrides, each honoured by the fault engine.
SCOPE_FIELDS = tuple(f.name for f in fields(Overrides) if f.name != "fixed")
_LISTS = ("tenants", "users", "routes", "versions")


def parse_scope(where: str, fault: str | None, raw: dict) -> dict[str, Any]:
    """The overrides of `fault`'s scope and parameters, from YAML: an unknown key, a value
    the fault's engine would refuse, or a scope without a fault is a LabError naming `where`
    (and, for an unknown key, the accepted ones), at load, not when the fault is injected."""
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise LabError(f"{where}: a mapping; accepted: {', '.join(SCOPE_FIELDS)}")
    refuse_unknown(where, raw, SCOPE_FIELDS)
    if fault is None:
        raise LabError(f"{where}: a scope needs a fault to apply to")
    for name in _LISTS:
        if name in raw and not (
            isinstance(raw[name], list) and all(isinstance(v, str) for v in raw[name])
        ):
            raise LabError(f"{where}.{name}: a list of names, e.g. [globex]")
    if "params" in raw and not isinstance(raw["params"], dict):
        raise LabError(f"{where}.params: a mapping of the fault's parameters")
    try:
        build_spec(catalogue.get(fault), overrides(raw))
    except (FaultSpecError, TypeError, ValueError) as exc:
        raise LabError(f"{where}: {exc}") from None
    return dict(raw)


def overrides(scope: dict[str, Any]) -> Overrides:
    """The Overrides a parsed scope (`parse_scope`) asks for."""
    return Overrides(
        **{
            name: list(value) if name in _LISTS else dict(value) if name == "params" else value
            for name, value in scope.items()
        }
    )


def _look(where: str, raw: Any) -> tuple[QuerySpec | None, bool]:
    """The look's spec, and whether it reads from the lab's start (`from_lab_start`)."""
    if raw is None:
        return None, False
    if not isinstance(raw, dict):
        raise LabError(f"{where}: a mapping of QuerySpec fields, not {raw!r}")
    fields = dict(raw)
    from_lab_start = fields.pop("from_lab_start", False)
    if not isinstance(from_lab_start, bool):
        raise LabError(f"{where}.from_lab_start: true or false, not {from_lab_start!r}")
    if "start" in fields:  # a fixed time in a lab file would be in the past at every run
        raise LabError(f"{where}.start: a lab sets no fixed start; use from_lab_start: true")
    try:
        return QuerySpec(**fields), from_lab_start
    except (TypeError, ValueError) as exc:
        raise LabError(f"{where}: {exc}") from None


def parse_answer_key(where: str, raw: dict) -> AnswerKey:
    """An answer key from its YAML form; labs and drills write keys the same way."""
    refuse_unknown(
        where,
        raw,
        ("fields", "expected", "fault_class_aliases", "count_question", "count_tolerance"),
    )
    fields = tuple(raw.get("fields") or ())
    bad = sorted(set(fields) - set(ANSWER_FIELDS))
    if not fields or bad:
        raise LabError(f"{where}.fields: accepted: {', '.join(ANSWER_FIELDS)}")
    expected = dict(raw.get("expected") or {})
    missing = [f for f in fields if f != "count" and f not in expected]
    if missing:
        raise LabError(f"{where}.expected: no expected value for {', '.join(missing)}")
    if "count" in fields and "count_question" not in raw:
        raise LabError(f"{where}: a count answer needs count_question")
    question = (
        parse_text(f"{where}.count_question", raw["count_question"])
        if "count_question" in raw
        else None
    )
    return AnswerKey(
        fields,
        expected,
        tuple(raw.get("fault_class_aliases") or ()),
        question,
        float(raw.get("count_tolerance", 0.25)),
    )


def with_japanese_names(key: AnswerKey, fault: str | None) -> AnswerKey:
    """`key` taking the catalogue's Japanese names of `fault`'s kind too (`aliases_ja`): a
    lab's or a drill's key names the kind in English, and its fault is the catalogue's."""
    if fault is None or "fault_class" not in key.fields:
        return key
    added = [n for n in catalogue.get(fault).aliases_ja if n not in key.fault_class_aliases]
    return replace(key, fault_class_aliases=(*key.fault_class_aliases, *added))


_LAB_FIELDS = (
    "id",
    "order",
    "level",
    "minutes",
    "fault",
    "scope",
    "traffic",
    "title",
    "story",
    "goal",
    "steps",
    "hints",
    "answer",
    "prove",
    "facilitator",
    "warmup_s",
)


def load(path: Path) -> Lab:
    where = (
        str(path.relative_to(LABS_DIR.parent))
        if path.is_relative_to(LABS_DIR.parent)
        else str(path)
    )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LabError(f"{where}: not YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise LabError(f"{where}: not a mapping")
    refuse_unknown(where, raw, _LAB_FIELDS)
    if raw.get("id") != path.parent.name:
        raise LabError(f"{where}: id must be the folder's name, {path.parent.name!r}")
    if raw.get("level") not in LEVELS:
        raise LabError(f"{where}.level: accepted: {', '.join(LEVELS)}")
    fault = raw.get("fault")
    if fault is not None and fault not in catalogue.BY_ID:
        raise LabError(f"{where}.fault: {fault!r} is not in the catalogue")
    steps = []
    for number, step in enumerate(raw.get("steps") or (), 1):
        at = f"{where}.steps[{number}]"
        refuse_unknown(at, step, ("title", "text", "look"))
        look, from_lab_start = _look(f"{at}.look", step.get("look"))
        steps.append(
            Step(
                parse_text(f"{at}.title", step.get("title")),
                parse_text(f"{at}.text", step.get("text")),
                look,
                from_lab_start,
            )
        )
    hints = tuple(
        parse_text(f"{where}.hints[{i}]", h) for i, h in enumerate(raw.get("hints") or (), 1)
    )
    if len(hints) != 3:
        raise LabError(
            f"{where}.hints: a ladder of exactly three hints (the last nearly gives it away)"
        )
    if not steps:
        raise LabError(f"{where}.steps: at least one step")
    return Lab(
        id=raw["id"],
        order=int(raw.get("order", 99)),
        level=raw["level"],
        minutes=int(raw.get("minutes", 20)),
        fault=fault,
        title=parse_text(f"{where}.title", raw.get("title")),
        story=parse_text(f"{where}.story", raw.get("story")),
        goal=parse_text(f"{where}.goal", raw.get("goal")),
        steps=tuple(steps),
        hints=hints,
        answer=with_japanese_names(
            parse_answer_key(f"{where}.answer", raw.get("answer") or {}), fault
        ),
        prove=parse_text(f"{where}.prove", raw.get("prove")),
        facilitator=dict(raw.get("facilitator") or {}),
        scope=parse_scope(f"{where}.scope", fault, raw.get("scope") or {}),
        traffic=dict(raw.get("traffic") or {}),
        warmup_s=float(raw.get("warmup_s", 6.0)),
    )


@cache
def all_labs() -> tuple[Lab, ...]:
    return tuple(sorted((load(p) for p in LABS_DIR.glob("*/lab.yaml")), key=lambda lab: lab.order))


def get(lab_id: str) -> Lab:
    for lab in all_labs():
        if lab.id == lab_id:
            return lab
    raise KeyError(f"no lab {lab_id!r}; the labs are: {', '.join(lab.id for lab in all_labs())}")
