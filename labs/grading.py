"""Grading a learner's structured answer against a lab's key, with partial credit.

A neighbouring service in the call chain (the caller or the callee of the culprit) earns
half: the learner is one hop away. The right attribute key with the wrong value earns
half. A count within the lab's tolerance earns all, within twice the tolerance half.
Feedback says what was right and where to look again, never the answer itself.

Names are compared as learners spell them: case aside, and `.`, `_` or `-` alike
(`Tenant.ID`, `tenant_id`); a service by its process's name too (`catalog-canary`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from labs.model import AnswerKey, Text
from sample_app import topology


@dataclass(frozen=True)
class FieldGrade:
    field: str
    credit: float  # 0, 0.5 or 1
    feedback: Text


@dataclass(frozen=True)
class Grade:
    fields: tuple[FieldGrade, ...]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> int:
        return round(100 * sum(f.credit for f in self.fields) / max(1, len(self.fields)))

    @property
    def correct(self) -> bool:
        return all(f.credit == 1 for f in self.fields)


def _normal(text: Any) -> str:
    return re.sub(r"[^a-z0-9+]+", " ", str(text).lower()).strip()


# A process's name as topology and `o11ykit app status` show it, to the service.name its
# spans carry: "catalog-canary" is the catalog, one version later.
_SERVICE_NAMES = {_normal(s.name): s.service_name for s in topology.SERVICES}


def _service_name(given: Any) -> str:
    """The service a learner names, spelt as its spans' service.name is, normalised."""
    normal = _normal(given)
    return _normal(_SERVICE_NAMES.get(normal, normal))


def neighbours(service: str) -> set[str]:
    """Services one call away, by service.name (the canary is catalog)."""
    names = {s.name: s.service_name for s in topology.SERVICES}
    found = set()
    for caller in topology.SERVICES:
        callees = {names[c] for c in caller.calls}
        if service in callees:
            found.add(caller.service_name)
        if caller.service_name == service:
            found |= callees
    return found - {service}


def _service(expected: str, given: Any) -> FieldGrade:
    if given is None:
        return FieldGrade("service", 0, Text("no service given", "サービスが指定されていません"))
    if _service_name(given) == _service_name(expected):
        return FieldGrade("service", 1, Text("right service", "サービスは正解です"))
    if _service_name(given) in {_normal(name) for name in neighbours(expected)}:
        return FieldGrade(
            "service",
            0.5,
            Text(
                f"{given} is one hop from the cause: follow its calls one step further",
                f"{given} は原因から一つ隣のサービスです。呼び出しをもう一段たどってください",
            ),
        )
    return FieldGrade("service", 0, Text(f"not {given}", f"{given} ではありません"))


def _exact(name: str, expected: Any, given: Any, what: Text) -> FieldGrade:
    if given is not None and _normal(given) == _normal(expected):
        return FieldGrade(name, 1, Text(f"right {what.en}", f"{what.ja}は正解です"))
    return FieldGrade(
        name,
        0,
        Text(f"not the {what.en} that explains it", f"原因を説明する{what.ja}ではありません"),
    )


def _attribute(expected: dict[str, Any], given: Any) -> FieldGrade:
    ((key, value),) = expected.items()
    if not isinstance(given, dict) or not given:
        return FieldGrade("attribute", 0, Text("no attribute given", "属性が指定されていません"))
    ((given_key, given_value),) = list(given.items())[:1]
    # `_normal` makes `.`, `_` and `-` one separator: Tenant.ID and tenant_id are tenant.id.
    right_key = _normal(given_key) == _normal(key)
    if right_key and _normal(given_value) == _normal(value):
        return FieldGrade("attribute", 1, Text("right attribute and value", "属性と値は正解です"))
    if right_key:
        return FieldGrade(
            "attribute",
            0.5,
            Text(
                f"{key} is the right attribute; compare its values again",
                f"{key} は正しい属性です。値をもう一度比べてください",
            ),
        )
    return FieldGrade(
        "attribute",
        0,
        Text(f"{given_key} does not single the cause out", f"{given_key} では原因を絞り込めません"),
    )


# Words a sentence adds around a kind of fault ("it's a retry storm issue"): left out when
# an answer is matched against the accepted phrases.
# fmt: off
_FILLER = frozenset({
    "a", "an", "the", "it", "its", "s", "is", "was", "this", "that", "looks", "like",
    "probably", "likely", "caused", "by", "issue", "problem", "fault", "bug",
})
# fmt: on


def _content_words(text: Any) -> list[str]:
    return [word for word in _normal(text).split() if word not in _FILLER]


def names_fault_class(expected: str, aliases: tuple[str, ...], given: Any) -> bool:
    """Whether `given` names the kind of fault: it holds one accepted phrase whole, and no
    word that none of the phrases has. "bad canary deploy" names a bad deploy; a list of
    every kind there is ("n+1 leak retry storm canary ..."), a negation ("not a slow
    query") or a neighbouring kind ("connection leak" where "leak" means a buffer's) does
    not."""
    phrases = [" ".join(_content_words(p)) for p in (expected, *aliases)]
    words = _content_words(given) if given is not None else []
    vocabulary = {word for phrase in phrases for word in phrase.split()}
    answer = f" {' '.join(words)} "
    return (
        bool(words)
        and set(words) <= vocabulary
        and any(phrase and f" {phrase} " in answer for phrase in phrases)
    )


def _fault_class(expected: str, aliases: tuple[str, ...], given: Any) -> FieldGrade:
    if names_fault_class(expected, aliases, given):
        return FieldGrade("fault_class", 1, Text("right kind of fault", "障害の種類は正解です"))
    return FieldGrade(
        "fault_class",
        0,
        Text("not the kind of fault the traces show", "トレースが示す障害の種類ではありません"),
    )


def _count(truth: float | None, tolerance: float, given: Any) -> FieldGrade:
    if truth is None:
        return FieldGrade(
            "count",
            0,
            Text(
                "the traces hold no count to compare with yet",
                "比較できる数がまだトレースにありません",
            ),
        )
    try:
        number = float(given)
    except (TypeError, ValueError):
        return FieldGrade("count", 0, Text("no count given", "数が指定されていません"))
    error = abs(number - truth) / max(truth, 1.0)
    if error <= tolerance + 1e-9:
        return FieldGrade("count", 1, Text("right count", "数は正解です"))
    if error <= 2 * tolerance + 0.1:
        return FieldGrade(
            "count",
            0.5,
            Text(
                "close: count distinct values, over the whole window",
                "惜しいです。期間全体で、異なる値を数えてください",
            ),
        )
    return FieldGrade(
        "count", 0, Text("far from what the traces show", "トレースが示す数とかけ離れています")
    )


def grade(key: AnswerKey, answer: dict[str, Any], count_truth: float | None = None) -> Grade:
    """Grade `answer` against a lab's (or a drill's) key."""
    graders = {
        "service": lambda: _service(key.expected["service"], answer.get("service")),
        "operation": lambda: _exact(
            "operation",
            key.expected["operation"],
            answer.get("operation"),
            Text("operation", "オペレーション"),
        ),
        "version": lambda: _exact(
            "version", key.expected["version"], answer.get("version"), Text("version", "バージョン")
        ),
        "attribute": lambda: _attribute(key.expected["attribute"], answer.get("attribute")),
        "fault_class": lambda: _fault_class(
            key.expected["fault_class"], key.fault_class_aliases, answer.get("fault_class")
        ),
        "count": lambda: _count(count_truth, key.count_tolerance, answer.get("count")),
    }
    return Grade(tuple(graders[name]() for name in key.fields), {"count_truth": count_truth})
