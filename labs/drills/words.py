"""What the drill commands say around a scenario's own texts, in each language, as
labs.guide.WORDS is for the labs: `say(language, key, **fields)`. The postmortem's
headings are its own (labs.drills.postmortem)."""

from __future__ import annotations

WORDS = {
    "en": {
        "separator": ", ",
        # `drill start` and `drill key`, the facilitator's.
        "started": "drill started for {teams}. Participants: `o11ykit drill brief`.",
        "keep_watching": "Keep `o11ykit drill watch` running (it applies the timeline and"
        " checks recovery).",
        "root_cause": "root cause: {fault} ({kind})",
        "expected": "expected diagnosis: {answer}",
        "mitigation": "mitigation: {name}",
        "timeline": "timeline (seconds since the drill started: {baseline} s healthy first,"
        " then the scenario {speed}):",
        "as_written": "as written",
        "scaled": "{scale}x as fast as written, --time-scale {scale}",
        "inject_at": "t+{at}s inject {fault}",
        "lasting": " for {seconds}s",
        "red_herring": "  (red herring)",
        "written": "  (written: {written})",
        # What happens, as `drill status` and `drill watch` print it.
        "injected": "injected {fault}",
        "cleared": "cleared {fault}",
        "recovered": "recovery verified: {health}",
        "recovery_verified": "recovery verified; `o11ykit drill postmortem`, then"
        " `o11ykit drill end`",
        "not_enough_traffic": "not enough traffic to judge ({samples} requests)",
        "health": "gateway error rate {error_rate}, p95 {p95} ms over {samples} requests;"
        " root cause signal: {cause}",
        "gone": "gone",
        "still present": "still present",
        "unknown": "unknown",
        # A scoreboard row of `drill status`: its fields, and how a field and seconds read.
        "team": "team",
        "acknowledged_s": "acknowledged_s",
        "diagnosed_s": "diagnosed_s",
        "wrong_answers": "wrong_answers",
        "mitigated_s": "mitigated_s",
        "recovered_s": "recovered_s",
        "status_field": "{name}={value}",
        "status_separator": "  ",
        "seconds": "{seconds}",
        # The teams' commands.
        "acknowledged": "{team}: acknowledged",
        "score": "score {score}/100",
        "correct": ": correct",
        "applied": "{name}: applied ({fix})",
        "nothing_to_change": "{name}: nothing to change; that part of the system is healthy",
        "ended": "drill ended; its faults are cleared",
        "wrote": "wrote {path}",
        # Refusals (DrillError).
        "not_running": "the sample system is not running: `o11ykit app up` first",
        "no_scenario": "give a scenario (see docs/drills.md) or --random",
        "no_such_scenario": "no scenario {name}; shipped: {shipped}, or fault:<catalogue id>",
        "no_such_fault": "unknown fault {fault}; the catalogue has: {faults}",
        "never_started": "no drill has been started here: `o11ykit drill start`",
        "bad_time_scale": "time_scale {scale}: a speed factor more than 0 (2: twice as fast)",
        "bad_baseline": "baseline_s {baseline}: a finite number of seconds, 0 or more (e.g. 60)",
        "exports_elsewhere": "drills read the local trace store (recovery, impact, the"
        " postmortem), and this system exports elsewhere: `o11ykit app up` with the local store"
        " (--backend local, the default)",
        "already_running": "a drill ({scenario}) is running: `o11ykit drill end` first",
        "team_names": "give each team a distinct name, e.g. --teams red,blue",
        "no_drill": "no drill is running",
        "no_team": "no team {team}; the teams are: {teams}",
        "empty_diagnosis": "a diagnosis needs at least one of --service, --operation,"
        " --attr KEY=VALUE, --class or --version",
        "no_mitigation": "no mitigation {name}; accepted: {accepted}",
        "not_started": "the incident has not started yet",
    },
    "ja": {
        "separator": "、",
        "started": "チーム {teams} でドリルを開始しました。参加者は `o11ykit drill brief`"
        " で状況説明を読めます。",
        "keep_watching": "`o11ykit drill watch` は動かしたままにしてください（タイムラインを"
        "適用し、回復を確認します）。",
        "root_cause": "根本原因: {fault}（{kind}）",
        "expected": "期待する診断: {answer}",
        "mitigation": "緩和策: {name}",
        "timeline": "タイムライン（ドリル開始からの秒数。最初の {baseline} 秒は正常で、その後"
        "シナリオを{speed}）:",
        "as_written": "書かれたとおりに再生",
        "scaled": "書かれた速さの {scale} 倍で再生、--time-scale {scale}",
        "inject_at": "t+{at}s {fault} を注入",
        "lasting": "、{seconds} 秒間",
        "red_herring": "（おとり）",
        "written": "（シナリオ上は {written}）",
        "injected": "{fault} を注入しました",
        "cleared": "{fault} を解除しました",
        "recovered": "回復を確認しました: {health}",
        "recovery_verified": "回復を確認しました。`o11ykit drill postmortem` を実行してから"
        " `o11ykit drill end` で終了してください",
        "not_enough_traffic": "判断するにはトラフィックが足りません（リクエスト {samples} 件）",
        "health": "gateway のエラー率 {error_rate}、p95 {p95} ms（リクエスト {samples} 件）。"
        "根本原因のシグナル: {cause}",
        "gone": "消えました",
        "still present": "まだ出ています",
        "unknown": "不明",
        "team": "チーム",
        "acknowledged_s": "確認",
        "diagnosed_s": "診断",
        "wrong_answers": "誤答",
        "mitigated_s": "緩和",
        "recovered_s": "回復",
        "status_field": "{name} {value}",
        "status_separator": "、",
        "seconds": "{seconds} 秒",
        "acknowledged": "{team}: アラートを確認しました",
        "score": "スコア {score}/100",
        "correct": ": 正解です",
        "applied": "{name}: 適用しました（{fix}）",
        "nothing_to_change": "{name}: 変更するものはありません。システムのその部分は正常です",
        "ended": "ドリルを終了しました。障害は解除されています",
        "wrote": "{path} に書き出しました",
        "not_running": "サンプルシステムが動いていません。先に `o11ykit app up` を実行してください",
        "no_scenario": "シナリオ（docs/drills.md を参照）か --random を指定してください",
        "no_such_scenario": "シナリオ {name} はありません。用意されているのは {shipped}、"
        "または fault:<カタログの ID> です",
        "no_such_fault": "障害 {fault} はカタログにありません。カタログにあるのは {faults} です",
        "never_started": "ここではまだドリルが開始されていません: `o11ykit drill start`",
        "bad_time_scale": "time_scale {scale}: 0 より大きい速度の倍率を指定してください"
        "（2 で2倍の速さ）",
        "bad_baseline": "baseline_s {baseline}: 0 以上の有限の秒数を指定してください（例: 60）",
        "exports_elsewhere": "ドリルはローカルのトレースストアを読みます（復旧、影響、"
        "ポストモーテム）が、このシステムはトレースを別の場所にエクスポートしています。"
        "ローカルストア（既定の --backend local）で `o11ykit app up` を実行してください",
        "already_running": "ドリル（{scenario}）が実行中です。先に `o11ykit drill end` を"
        "実行してください",
        "team_names": "チームにはそれぞれ別の名前を付けてください（例: --teams red,blue）",
        "no_drill": "実行中のドリルはありません",
        "no_team": "チーム {team} はありません。チームは {teams} です",
        "empty_diagnosis": "診断には --service、--operation、--attr KEY=VALUE、--class、"
        "--version のうち少なくとも一つが必要です",
        "no_mitigation": "緩和策 {name} はありません。使えるのは {accepted} です",
        "not_started": "インシデントはまだ始まっていません",
    },
}


def say(language: str, key: str, **fields: object) -> str:
    """WORDS' text for `key` in `language`, its {fields} filled in."""
    return WORDS[language][key].format(**fields)
