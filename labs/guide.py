"""Each lab's README.md (English), README.ja.md (Japanese) and FACILITATOR.md, generated
from its lab.yaml so guide and lab file cannot disagree:
`python -m labs.guide` writes them all; a test fails when one is out of date.

WORDS is what labs say around a lab's own texts, in each language: the guides' headings,
and the terminal's framing (`o11ykit lab`, the tour) through `say`."""

from __future__ import annotations

import re
import sys

from labs.grading import COUNT_READ_S
from labs.model import Lab, all_labs
from o11ykit.backends.query_spec import local_command

WORDS = {
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
        "from_lab_start": "(`o11ykit lab look {number}` prints it with `--start` at the lab's"
        " start, so that it counts the whole lab)",
        "jaeger": "Jaeger UI",
        "answer_with": "Answer with",
        "count": "count",
        # A lab's level, as lab.yaml names it.
        "first steps": "first steps",
        "beginner": "beginner",
        "intermediate": "intermediate",
        "advanced": "advanced",
        # `o11ykit lab` and the tour.
        "level_minutes": "({level}, {minutes} min)",
        "minutes_short": "{minutes} min",
        "next_step": "(Enter for the next step) ",
        "go_on": "  (Enter to go on) ",
        "hint_of": "hint {number} of {total}: {text}",
        "hint_short": "hint {number}/{total}",
        "score": "score: {score}/100",
        "solved": "  — solved!",
        "check": "{lab}: {answers} answer(s), best score {best}/100, {hints} hint(s) taken",
        "before_fix": "  before the fix: {measured}",
        "after_fix": "  after the fix:  {measured}",
        "before": "  before: {measured}",
        "after": "  after:  {measured}",
        "prove_again": "prove again",
        "run_again": "run `{command}` again",
        "not_there_before": "the signal was not there before the fix (too few samples, or the"
        " fault not yet showing), so its going proves nothing: let traffic run, then {again}",
        "gone": "the signal is gone: the fix switch removed it",
        "too_few_after": "too few samples after the fix to tell (under {least}): {again} once"
        " more traffic has arrived",
        "still_there": "the signal is still there after the fix: {again} to measure anew",
        "stopped_lab": "stopped the lab {lab}: its fault is cleared and its traffic ended",
        "ended_unknown": "ended the traffic of the lab {lab}, which this version does not know;"
        " `o11ykit fault clear` clears any fault it left",
        "traces_stay": "{lab}'s traces stay in the store: this lab's looks read the last"
        " {window}, so they show them too until {until} UTC. The grading reads only what comes"
        " after this start.",
        "stopped": "the lab's fault is cleared and its traffic stopped; `o11ykit app down`"
        " stops the system",
        "forgotten": "{lab}: progress forgotten",
        "more_rows": "    ... and {hidden} more rows (the command above shows them all)",
        "more_rows_past_limit": "    ... and {hidden} more rows (the command above shows {shown}"
        " of the {total} groups: give it `--limit {limit}` for more)",
        "more_traces": "    ... and {hidden} more traces (the command above lists them all)",
        "no_traces": "    no traces matched: let the traffic run a while longer and look again,"
        " or widen the window (a larger --since in the command above)",
        "no_spans": "    no spans matched: let the traffic run a while longer and look again,"
        " or widen the window (a larger --since in the command above)",
        "link_only": "    Query Data API: {reason}; open the link above",
        "tour_starting": "Starting the sample system on the embedded defaults...",
        "tour_where": "  gateway {gateway}, trace store {store} (Jaeger API v3); five services,"
        " all traced by o11ykit.init()",
        "tour_lab": "Lab: {title}",
        "tour_traffic": "  (shoppers' traffic for a few seconds...)",
        "tour_answer": "The answer the traces give:",
        "tour_next": "Next: `o11ykit lab list`, `o11ykit lab start LAB` (add --lang ja),"
        " `o11ykit app up`, `o11ykit fault list`; docs/labs.md",
        # The sample system's progress line as it starts (sample_app.stack), word for word.
        "seeded": "seeded the databases in {seconds} s",
        # A signal `prove` measured; in English word for word Measurement.describe().
        "measured": "{measure} of {target} = {value} (threshold {threshold}, {samples} samples)",
        "no_value": "n/a",
        "trace_counts": "{spans} spans  {errors} errors",
        # A breakdown's table title, and where the store read its key (o11ykit.traces_cli).
        "breakdown_title": "{total} spans by {by} in {groups} group(s) ({source})",
        "more_groups": "{hidden} smaller group(s) not shown",
        "more_spans": "... and {hidden} more spans",
        "span column": "span column",
        "indexed span attribute": "indexed span attribute",
        "resource attribute": "resource attribute",
        "span bytes": "span bytes",
        "lab_commands": "`o11ykit lab look N --run`, `o11ykit lab hint`, `o11ykit lab answer ...`",
        "not_running": "the sample system is not running: `o11ykit lab start LAB` starts it",
        "no_lab": "no lab is running: `o11ykit lab start LAB` (see `o11ykit lab list`)",
        "no_such_lab": "no lab {lab}; the labs are: {labs}",
        "no_step": "step {number}: this lab has steps 1 to {steps}",
        "drill_running": "a drill ({drill}) is running on this system: `o11ykit drill end` first,"
        " or start the lab on another (--data-dir)",
        "no_fault": "{lab} has no fault, so there is no fix switch to flip",
        "exports_elsewhere": "prove reads the local trace store, and this stack exports elsewhere",
        "solve_exports_elsewhere": "solve reads the local trace store, and this stack exports"
        " elsewhere (`o11ykit app up --backend local`, the default, keeps the spans here)",
        "not_graded": "  – {field}: not graded: only the local trace store can tell it, and this"
        " stack exports elsewhere; the score is of the other fields",
        "afresh": "started {lab} afresh: the earlier run's {hints} hint(s) and {answers}"
        " answer(s) are forgotten",
        "no_solution": "the solver finds no such problem in the traces (yet)",
        "honeycomb_unset": "set O11YKIT_HONEYCOMB_TEAM and O11YKIT_HONEYCOMB_ENVIRONMENT "
        "for Honeycomb links (docs/honeycomb.md)",
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
        "from_lab_start": "（`o11ykit lab look {number}` はラボの開始時刻を `--start` に入れて"
        "表示するので、ラボ全体を数えられます）",
        "jaeger": "Jaeger UI",
        "answer_with": "回答の方法",
        "count": "数",
        "first steps": "はじめの一歩",
        "beginner": "初級",
        "intermediate": "中級",
        "advanced": "上級",
        "level_minutes": "（{level}・{minutes} 分）",
        "minutes_short": "{minutes} 分",
        "next_step": "（Enter で次の手順へ） ",
        "go_on": "  （Enter で続けます） ",
        "hint_of": "ヒント {number}/{total}: {text}",
        "hint_short": "ヒント {number}/{total}",
        "score": "スコア: {score}/100",
        "solved": "  — 正解です！",
        "check": "{lab}: 回答 {answers} 件、最高スコア {best}/100、使ったヒント {hints} 個",
        "before_fix": "  修正前: {measured}",
        "after_fix": "  修正後: {measured}",
        "before": "  修正前: {measured}",
        "after": "  修正後: {measured}",
        "prove_again": "もう一度 `o11ykit lab prove` を実行してください",
        "run_again": "`{command}` をもう一度実行してください",
        "not_there_before": "修正前にシグナルが出ていませんでした（サンプルが少なすぎるか、"
        "障害がまだ表れていません）。これでは消えても何も証明できません。"
        "トラフィックをしばらく流してから{again}",
        "gone": "シグナルが消えました。消したのは修正スイッチです",
        "too_few_after": "修正後のサンプルが少なすぎて判断できません（{least} 未満）。"
        "トラフィックがもっと届いてから{again}",
        "still_there": "修正後もシグナルが残っています。測り直すには{again}",
        "stopped_lab": "ラボ {lab} を止めました。障害は解除され、トラフィックも終了しました",
        "ended_unknown": "このバージョンが知らないラボ {lab} のトラフィックを終了しました。"
        "残った障害は `o11ykit fault clear` で解除できます",
        "traces_stay": "{lab} のトレースはストアに残ります。このラボのクエリは直近 {window} を"
        "読むので、{until} UTC まではそれらも表示されます。採点はこの開始より後のトレースだけを"
        "読みます。",
        "stopped": "ラボの障害を解除し、トラフィックを止めました。システムは `o11ykit app down`"
        " で停止します",
        "forgotten": "{lab}: 進捗を消去しました",
        "more_rows": "    ...ほか {hidden} 行（上のコマンドですべて表示できます）",
        "more_rows_past_limit": "    ...ほか {hidden} 行（上のコマンドが表示するのは"
        " {total} グループのうち {shown} グループです。`--limit {limit}` を付けるとさらに"
        "表示できます）",
        "more_traces": "    ...ほか {hidden} 件のトレース（上のコマンドですべて一覧できます）",
        "no_traces": "    一致するトレースはありません。トラフィックをもうしばらく流してから"
        "もう一度見るか、期間を広げてください（上のコマンドの --since を大きくする）",
        "no_spans": "    一致するスパンはありません。トラフィックをもうしばらく流してから"
        "もう一度見るか、期間を広げてください（上のコマンドの --since を大きくする）",
        "link_only": "    Query Data API: {reason}。上のリンクを開いてください",
        "tour_starting": "組み込みの既定の構成でサンプルシステムを起動しています...",
        "tour_where": "  ゲートウェイ {gateway}、トレースストア {store}（Jaeger API v3）。"
        "5つのサービスはすべて o11ykit.init() でトレースされています",
        "tour_lab": "ラボ: {title}",
        "tour_traffic": "  （買い物客のトラフィックを数秒間流しています...）",
        "tour_answer": "トレースが示す答え:",
        "tour_next": "次は: `o11ykit lab list`、`o11ykit lab start LAB`（--lang ja で日本語）、"
        "`o11ykit app up`、`o11ykit fault list`。詳しくは docs/labs.md",
        "seeded": "データベースに初期データを投入しました（{seconds} 秒）",
        "measured": "{measure} = {value}（{target}、しきい値 {threshold}、サンプル {samples} 件）",
        "no_value": "データなし",
        "trace_counts": "スパン {spans}、エラー {errors}",
        "breakdown_title": "{by} ごとのスパン {total} 個、{groups} グループ（{source}）",
        "more_groups": "小さいグループ {hidden} 個は表示していません",
        "more_spans": "...ほか {hidden} 個のスパン",
        "span column": "スパンの列",
        "indexed span attribute": "インデックス付きのスパン属性",
        "resource attribute": "リソース属性",
        "span bytes": "スパンのバイト列",
        "lab_commands": "`o11ykit lab look N --run`、`o11ykit lab hint`、`o11ykit lab answer ...`",
        "not_running": "サンプルシステムが動いていません。`o11ykit lab start LAB` で起動できます",
        "no_lab": "実行中のラボはありません。`o11ykit lab start LAB` で始めてください"
        "（ラボの一覧は `o11ykit lab list`）",
        "no_such_lab": "ラボ {lab} はありません。ラボは {labs} です",
        "no_step": "手順 {number}: このラボの手順は 1 から {steps} までです",
        "drill_running": "このシステムではドリル（{drill}）が実行中です。先に `o11ykit drill end`"
        " を実行するか、別のシステムでラボを始めてください（--data-dir）",
        "no_fault": "{lab} には障害がないので、入れる修正スイッチがありません",
        "exports_elsewhere": "prove はローカルのトレースストアを読みますが、このシステムは"
        "トレースを別の場所にエクスポートしています",
        "solve_exports_elsewhere": "solve はローカルのトレースストアを読みますが、このシステムは"
        "トレースを別の場所にエクスポートしています（既定の `o11ykit app up --backend local`"
        " ならスパンはここに残ります）",
        "not_graded": "  – {field}: 採点していません。ローカルのトレースストアにしか"
        "分からない値で、このシステムはトレースを別の場所にエクスポートしています。"
        "スコアは他の項目のものです",
        "afresh": "{lab} を最初から始めました。前回のヒント {hints} 個と回答 {answers} 件は"
        "消去されました",
        "no_solution": "ソルバーはトレースの中にそのような問題を（まだ）見つけていません",
        "honeycomb_unset": "Honeycomb のリンクには O11YKIT_HONEYCOMB_TEAM と"
        " O11YKIT_HONEYCOMB_ENVIRONMENT を設定してください（docs/honeycomb.md）",
    },
}


# Where the local store read a breakdown's key (o11ykit.store.analytics), each in WORDS.
STORE_SOURCES = ("span column", "indexed span attribute", "resource attribute", "span bytes")


def say(language: str, key: str, **fields: object) -> str:
    """WORDS' text for `key` in `language`, its {fields} filled in."""
    return WORDS[language][key].format(**fields)


# The sample system's progress lines (sample_app.stack), which a lab or the tour passes on:
# the stack speaks English to its own users, so a lab in Japanese says them in Japanese.
_STACK_PROGRESS = ((re.compile(r"seeded the databases in (?P<seconds>\S+) s"), "seeded"),)


def progress_line(language: str, line: str) -> str:
    """A line of the sample system's start in `language`; one not known here as it is."""
    for pattern, key in _STACK_PROGRESS:
        matched = pattern.fullmatch(line)
        if matched:
            return say(language, key, **matched.groupdict())
    return line


_ANSWER_FLAGS = {
    "service": "--service SERVICE",
    "operation": "--operation 'OPERATION'",
    "attribute": "--attr KEY=VALUE",
    "fault_class": "--class 'KIND OF FAULT'",
    "version": "--version VERSION",
    "count": "--count N",
}


def readme(lab: Lab, language: str) -> str:
    w = WORDS[language]
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
            local = f"- {w['local']}: `{local_command(step.look)}`"
            if step.from_lab_start:
                local += " " + w["from_lab_start"].format(number=number)
            lines += [
                local,
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
            f"- count: {lab.answer.count_question.en} (computed from the traces at grading "
            f"time, any value it had in the {COUNT_READ_S // 60} minutes before; tolerance "
            f"{lab.answer.count_tolerance:.0%})"
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
