"""Each lab's README.md (English), README.ja.md (Japanese) and FACILITATOR.md, generated
from its lab.yaml so guide and lab file cannot disagree:
`python -m labs.guide` writes them all; a test fails when one is out of date."""

from __future__ import annotations

import sys

from labs.model import Lab, all_labs
from labs.session import render_look

_WORDS = {
    "en": {
        "story": "The story",
        "goal": "Your goal",
        "steps": "Steps",
        "look": "Look",
        "hints": "Hints",
        "hint": "Hint",
        "answer": "Your answer",
        "prove": "Prove it",
        "level": "Level",
        "minutes": "minutes",
        "start": "Start",
        "local": "local store",
        "jaeger": "Jaeger UI",
        "answer_with": "Answer with",
        "count": "count",
    },
    "ja": {
        "story": "ストーリー",
        "goal": "ゴール",
        "steps": "手順",
        "look": "見る場所",
        "hints": "ヒント",
        "hint": "ヒント",
        "answer": "回答",
        "prove": "原因を証明する",
        "level": "レベル",
        "minutes": "分",
        "start": "開始",
        "local": "ローカルストア",
        "jaeger": "Jaeger UI",
        "answer_with": "回答の方法",
        "count": "数",
    },
}
_ANSWER_FLAGS = {
    "service": "--service SERVICE",
    "operation": "--operation 'OPERATION'",
    "attribute": "--attr KEY=VALUE",
    "fault_class": "--class 'KIND OF FAULT'",
    "version": "--version VERSION",
    "count": "--count N",
}


def readme(lab: Lab, language: str) -> str:
    w = _WORDS[language]
    other = "README.ja.md" if language == "en" else "README.md"
    lines = [
        f"# {lab.title(language)}",
        "",
        f"*{w['level']}: {lab.level} · {lab.minutes} {w['minutes']} · [{other}]({other})*",
        "",
        "<!-- Generated from lab.yaml by `python -m labs.guide`; edit lab.yaml instead. -->",
        "",
        f"```sh\no11ykit lab start {lab.id}" + (" --lang ja" if language == "ja" else "") + "\n```",
        "",
        f"## {w['story']}",
        "",
        lab.story(language),
        "",
        f"## {w['goal']}",
        "",
        lab.goal(language),
        "",
        f"## {w['steps']}",
        "",
    ]
    for number, step in enumerate(lab.steps, 1):
        lines += [f"### {number}. {step.title(language)}", "", step.text(language), ""]
        if step.look is not None:
            lines += [
                f"- {w['local']}: `{render_look(step.look, 'local').text}`",
                f"- {w['jaeger']}: `o11ykit lab look {number} --backend jaeger` "
                "(Honeycomb: `--backend honeycomb`)",
                "",
            ]
    lines += [f"## {w['hints']}", "", "`o11ykit lab hint`", ""]
    lines += [f"## {w['answer']}", ""]
    if lab.answer.count_question is not None:
        lines += [f"{w['count']}: {lab.answer.count_question(language)}", ""]
    flags = " ".join(_ANSWER_FLAGS[f] for f in lab.answer.fields)
    lines += [f"```sh\no11ykit lab answer {flags}\n```", ""]
    if lab.fault:
        lines += [
            f"## {w['prove']}",
            "",
            lab.prove(language),
            "",
            "```sh\no11ykit lab prove\n```",
            "",
        ]
    return "\n".join(lines)


def facilitator(lab: Lab) -> str:
    notes = lab.facilitator
    lines = [
        f"# Facilitator notes: {lab.title.en}",
        "",
        "<!-- Generated from lab.yaml by `python -m labs.guide`. -->",
        "",
        f"- Time needed: {notes.get('minutes', lab.minutes)} minutes",
        f"- Fault: `{lab.fault or 'none'}` (docs/fault-catalogue.md)",
        "",
    ]
    key = lab.answer.expected
    lines += ["## Answer key (do not show learners)", ""]
    lines += [f"- {name}: `{key[name]}`" for name in lab.answer.fields if name in key]
    if lab.answer.count_question is not None:
        lines.append(
            f"- count: {lab.answer.count_question.en} (computed from the traces "
            f"at grading time; tolerance {lab.answer.count_tolerance:.0%})"
        )
    lines += ["", "## Common wrong turns", ""]
    lines += [f"- {turn}" for turn in notes.get("wrong_turns", [])]
    lines += ["", "## Discussion questions", ""]
    lines += [f"- {question}" for question in notes.get("discussion", [])]
    lines += ["", "## Hint ladder", ""]
    lines += [f"{n}. {hint.en}" for n, hint in enumerate(lab.hints, 1)]
    return "\n".join(lines) + "\n"


def outputs(lab: Lab) -> dict[str, str]:
    return {
        "README.md": readme(lab, "en"),
        "README.ja.md": readme(lab, "ja"),
        "FACILITATOR.md": facilitator(lab),
    }


def main() -> int:
    for lab in all_labs():
        for name, text in outputs(lab).items():
            (lab.directory / name).write_text(text, encoding="utf-8")
    print(f"wrote the guides of {len(all_labs())} labs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
