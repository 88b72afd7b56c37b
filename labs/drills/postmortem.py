"""The postmortem draft, in Markdown, English or Japanese: timeline from the drill's log,
impact from the traces, root cause from the key, and the sections the team writes."""

from __future__ import annotations

import math
import shlex
import time
from datetime import datetime, timezone

from labs.drills.catalogue_ja import fault_text
from labs.drills.drill import Drill
from labs.drills.state import scoreboard
from labs.drills.telemetry import Health, at
from o11ykit.backends.jaeger_query import ui_search_link
from o11ykit.backends.query_spec import url_args
from o11ykit.timeformats import format_second

_EN = {
    "language": "en",
    "title": "Postmortem draft",
    "summary": "Summary",
    "impact": "Impact",
    "timeline": "Timeline",
    "cause": "Root cause",
    "factors": "Contributing factors",
    "actions": "Action items",
    "scores": "Drill scoreboard",
    "tenants": "Tenants affected",
    "users": "Distinct users affected",
    "errors": "Failed requests at the edge",
    "latency": "Edge latency (p50 / p95)",
    "before": "before",
    "during": "during",
    "write": "_To be written by the team._",
    "factors_prompts": [
        "What made the cause easy to introduce?",
        "What delayed detection, and what sped it up?",
        "Which signal would have told us sooner?",
    ],
    "actions_head": "| action | owner | due |\n| --- | --- | --- |",
    "from_fix": "Make the fix permanent",
    "alert": "Alert on the signal that showed it",
    "team": "team",
    "ack": "acknowledged",
    "diag": "diagnosed",
    "wrong": "wrong answers",
    "mitig": "mitigated",
    "no_change": " (changed nothing: that part of the system was healthy)",
    "recov": "recovered",
    "none": "none",
    "pseudo": "counted by their pseudonymous ids ({attribute})",
    "cause_line": "**{title}** ({kind}). {mechanism}",
    "drill_started": "drill started: {scenario}, teams {teams}",
    "inject": "inject",
    "clear": "clear",
    "ended": "drill ended",
    "no_data": "n/a",
    "seconds": "{seconds} s",
    "look": "Traces of the incident",
    "look_compare": "What the spans where the failures began had in common",
    "look_tenants": "The edge's spans by tenant",
    "look_ui": "The failures in the Jaeger UI",
}
_JA = {
    "language": "ja",
    "title": "ポストモーテム草案",
    "summary": "概要",
    "impact": "影響",
    "timeline": "タイムライン",
    "cause": "根本原因",
    "factors": "寄与要因",
    "actions": "アクションアイテム",
    "scores": "ドリルのスコアボード",
    "tenants": "影響を受けたテナント",
    "users": "影響を受けた異なるユーザー数",
    "errors": "エッジで失敗したリクエスト",
    "latency": "エッジのレイテンシ（p50 / p95）",
    "before": "発生前",
    "during": "発生中",
    "write": "_チームが記入してください。_",
    "factors_prompts": [
        "原因が入り込みやすかったのはなぜか？",
        "検知を遅らせたもの、早めたものは何か？",
        "どのシグナルがあれば、もっと早く気づけたか？",
    ],
    "actions_head": "| アクション | 担当 | 期限 |\n| --- | --- | --- |",
    "from_fix": "修正を恒久化する",
    "alert": "原因を示したシグナルにアラートを設定する",
    "team": "チーム",
    "ack": "確認",
    "diag": "診断",
    "wrong": "誤答",
    "mitig": "緩和",
    "no_change": "（変更なし：その部分はもともと正常でした）",
    "recov": "回復",
    "none": "なし",
    "pseudo": "仮名 ID（{attribute}）で数えた人数",
    "cause_line": "**{title}**（{kind}）。{mechanism}",
    "drill_started": "ドリル開始: {scenario}、チーム {teams}",
    "inject": "注入",
    "clear": "解除",
    "ended": "ドリル終了",
    "no_data": "データなし",
    "seconds": "{seconds} 秒",
    "look": "インシデント中のトレース",
    "look_compare": "失敗が始まったスパンに共通するもの",
    "look_tenants": "テナント別のエッジのスパン",
    "look_ui": "Jaeger UI で見る失敗",
}


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M:%S")


def _ms(value: float | None, w: dict = _EN) -> str:
    return w["no_data"] if value is None else f"{value:.0f} ms"


def _seconds(value: float | None, w: dict = _EN) -> str:
    return "—" if value is None else w["seconds"].format(seconds=f"{value:.0f}")


def _health(event: dict, language: str) -> str:
    """A recovery's health as logged (English), or in `language` from its logged figures."""
    measured = event.get("measured")
    if language != "en" and isinstance(measured, dict):
        try:
            return Health(**measured).describe(language)
        except (TypeError, ValueError, KeyError):  # a log of another version: as written
            pass
    return str(event.get("health"))


def _timeline(drill: Drill, w: dict) -> list[str]:
    lines = []
    for e in drill.state.events:
        kind = e["event"]
        teams = ", ".join(e.get("teams", []))
        action = e.get("action")
        action = w[action] if action in ("inject", "clear") else action
        what = {
            "drill_started": w["drill_started"].format(scenario=e.get("scenario"), teams=teams),
            "change_applied": f"{action} `{e.get('fault')}`",
            "ack": f"{e.get('team')}: {w['ack']}",
            "diagnosis": f"{e.get('team')}: {w['diag']} {e.get('answer')} → {e.get('score')}/100",
            "mitigation": f"{e.get('team')}: {w['mitig']} `{e.get('name')}`"
            + ("" if e.get("fault") else w["no_change"]),
            "recovered": f"{w['recov']}: {_health(e, w['language'])}",
            "ended": w["ended"],
        }.get(kind, kind)
        lines.append(f"- {_clock(e['t'])} UTC — {what}")
    return lines


def _look_again(drill: Drill, w: dict) -> list[str]:
    """The commands (and the Jaeger UI link) that read the incident's window again, to the
    second, for whoever writes the rest of the postmortem after the drill."""
    window = drill.state.incident_window(time.time())
    if window is None:
        return []
    start, end = math.floor(window[0]), math.ceil(window[1])
    asked = [
        "--start",
        format_second(start),
        "--end",
        format_second(end),
        *url_args(drill.query.base_url),
    ]

    def command(*words: str) -> str:
        return "`" + shlex.join(["o11ykit", "traces", *words, *asked]) + "`"

    # shown_url: a postmortem is shared, and a password in the query URL stays out of it.
    link = ui_search_link(
        drill.query.shown_url, "gateway", None, {"error": "true"}, at(start), at(end)
    )
    tenants = command("breakdown", "--service", "gateway", "--by", "tenant.id")
    return [
        f"## {w['look']}",
        "",
        # Every service's: the cause is often behind the edge (a canary's version). Where the
        # failures began, not every error: each failing request marks its edge's spans too,
        # and among all errors the edge's pairs outrank the cause's own.
        f"- {w['look_compare']}: {command('compare', '--origin-errors')}",
        f"- {w['look_tenants']}: {tenants}",
        f"- {w['look_ui']}: <{link}>",
        "",
    ]


def render(drill: Drill, language: str = "en") -> str:
    w = _JA if language == "ja" else _EN
    scenario, impact = drill.scenario, drill.impact()
    fault = fault_text(scenario.root_fault, language)
    users = f"{impact.distinct_users}"
    if impact.user_attribute == "enduser.pseudo.id":
        users += " — " + w["pseudo"].format(attribute=impact.user_attribute)
    lines = [
        f"# {w['title']}: {scenario.title(language)}",
        "",
        f"## {w['summary']}",
        "",
        scenario.briefing(language),
        "",
        f"## {w['impact']}",
        "",
        f"- {w['tenants']}: {len(impact.tenants)} ({', '.join(impact.tenants) or w['none']})",
        f"- {w['users']}: {users}",
        f"- {w['errors']}: {impact.errors} / {impact.requests}",
        f"- {w['latency']}: {w['before']} {_ms(impact.p50_before_ms, w)}"
        f" / {_ms(impact.p95_before_ms, w)}"
        f", {w['during']} {_ms(impact.p50_during_ms, w)} / {_ms(impact.p95_during_ms, w)}",
        "",
        *_look_again(drill, w),
        f"## {w['timeline']}",
        "",
        *_timeline(drill, w),
        "",
        f"## {w['cause']}",
        "",
        w["cause_line"].format(
            title=fault.title, kind=fault.fault_class, mechanism=fault.mechanism
        ),
        "",
        f"## {w['factors']}",
        "",
        w["write"],
        "",
        *[f"- {p}" for p in w["factors_prompts"]],
        "",
        f"## {w['actions']}",
        "",
        w["actions_head"],
        f"| {w['from_fix']}: {fault.fix} | | |",
        f"| {w['alert']}: {fault.signal} | | |",
        "",
        f"## {w['scores']}",
        "",
        f"| {w['team']} | {w['ack']} | {w['diag']} | {w['wrong']} | {w['mitig']} | {w['recov']} |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in scoreboard(drill.state):
        lines.append(
            f"| {row['team']} | {_seconds(row['acknowledged_s'], w)} | "
            f"{_seconds(row['diagnosed_s'], w)} | {row['wrong_answers']} | "
            f"{_seconds(row['mitigated_s'], w)} | {_seconds(row['recovered_s'], w)} |"
        )
    return "\n".join(lines) + "\n"
