"""A whole drill played by a script on the local stack: a wrong diagnosis, a right one,
a mitigation, recovery verified from the traces; then the postmortem's impact checked
against the ground truth of what the traffic generator saw, and the timings surviving a
restart of the runner (the state is rebuilt from the log)."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labs.drills import postmortem, scenario
from labs.drills.drill import Drill, DrillError
from labs.drills.state import scoreboard
from labs.model import LabError
from o11ykit.backends.jaeger_query import JaegerQuery
from sample_app.stack import Stack, StackConfig, running
from sample_app.traffic import DEFAULT_MIX, BackgroundTraffic, TrafficConfig
from tests.support.sample_stack import o11ykit_command, seeded_copy


def test_three_shipped_scenarios_each_with_a_second_fault_or_a_red_herring():
    shipped = scenario.shipped()
    assert len(shipped) >= 3
    for chosen in shipped:
        assert len(chosen.timeline) >= 2 or any(c.red_herring for c in chosen.timeline)
    assert scenario.pick(7).id == scenario.pick(7).id  # random, by seed


def test_a_catalogue_drill_takes_the_names_people_give_its_fault_and_no_other_faults():
    # `--random` draws a catalogue fault most of the time; its key used to take only the
    # catalogue's compound class ("bad deploy (canary)"), so "bad deploy" scored half.
    from labs.grading import grade
    from sample_app.faults.catalogue import FAULTS

    for fault in FAULTS:
        key = scenario.from_fault(fault.id).key
        service = key.expected["service"]
        # In Japanese too, as a learner types it: without the spaces between words.
        japanese = [name.replace(" ", "") for name in fault.aliases_ja]
        assert japanese, fault.id
        for name in (fault.fault_class, *fault.aliases, *japanese):
            answer = {"service": service, "fault_class": name}
            assert grade(key, answer).correct, (fault.id, name)
        for other in FAULTS:
            if other.id != fault.id:
                for name in (other.fault_class, *other.aliases, *other.aliases_ja):
                    answer = {"service": service, "fault_class": name}
                    assert not grade(key, answer).correct, (fault.id, other.id, name)


def test_a_shipped_scenario_takes_the_japanese_names_and_refuses_negations():
    from labs.grading import grade

    key = scenario.get("canary-rollout").key
    right = {"service": "catalog", "version": "v1.8.0"}
    for said in ("カナリア", "悪いデプロイ", "bad deploy"):
        assert grade(key, {**right, "fault_class": said}).correct, said
    for said in ("bad deploy ではない", "悪いデプロイじゃない", "not a bad deploy"):
        assert not grade(key, {**right, "fault_class": said}).correct, said


def test_drill_traffic_reaches_each_scenario_s_root_cause(tmp_path):
    from labs.drills.cli import traffic_command
    from sample_app.traffic.cli import add_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for chosen in scenario.shipped():
        command = traffic_command(chosen, "http://127.0.0.1:9", tmp_path / "j.jsonl")
        assert command[1:3] == ["-m", "sample_app.traffic"]
        config = config_from_args(parser.parse_args(command[3:]), parser)
        focus = chosen.root_fault.focus
        # A flash sale's shop is wonka: without its checkouts the pool never runs dry.
        assert config.focus_tenant == focus.tenant
        assert config.focus_share == (0.3 if focus.tenant or focus.user else 0.0)
        for persona in focus.personas:
            assert config.mix[persona] == 10 * DEFAULT_MIX[persona]
    flash = next(s for s in scenario.shipped() if s.id == "flash-sale")
    command = traffic_command(flash, "http://127.0.0.1:9", tmp_path / "j")
    assert command[command.index("--focus-tenant") + 1] == "wonka"


def _offline_drill(tmp_path, monkeypatch) -> tuple[Drill, list[tuple[str, str, object]]]:
    """A drill on a stack where nothing answers: what it injects and clears is recorded."""
    state = {
        "data_dir": str(tmp_path),
        "services": {"catalog": {"url": "http://127.0.0.1:9"}},
        "token": "t",
        "query_url": "http://127.0.0.1:9",
    }
    drill, changes = Drill(state), []
    monkeypatch.setattr(
        drill.faults,
        "inject",
        lambda fault, overrides=None: changes.append(("+", fault, overrides)),
    )
    monkeypatch.setattr(
        drill.faults, "clear", lambda fault=None: changes.append(("-", fault, None))
    )
    return drill, changes


def test_the_time_scale_speeds_the_timeline_up(tmp_path, monkeypatch):
    # canary-rollout: bad-canary at 0 s; slow-provider at 20 s for 40 s, i.e. 2 s and 4 s at 10x.
    drill, changes = _offline_drill(tmp_path, monkeypatch)
    drill.start("canary-rollout", ["red"], time_scale=10, baseline_s=0)
    started = drill.state.started
    assert [(c[0], c[1]) for c in changes] == [("+", "bad-canary")]
    drill.tick(started + 1.9)
    assert len(changes) == 1
    drill.tick(started + 2.1)
    assert changes[-1][:2] == ("+", "slow-provider")
    drill.tick(started + 5.9)
    assert len(changes) == 2
    drill.tick(started + 6.1)
    assert changes[-1][:2] == ("-", "slow-provider")


@pytest.mark.parametrize("scale", ["0", "-1", "nan", "inf", "fast"])
def test_a_time_scale_of_0_or_below_is_refused_naming_the_option(scale, capsys):
    from o11ykit.cli import build_parser

    argv = ["drill", "start", "canary-rollout", "--teams", "red", "--time-scale", scale]
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert f"argument --time-scale: {scale!r} is not a speed factor: a number more than 0" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("scale", [0, -1, float("nan")])
def test_a_drill_started_from_python_refuses_a_time_scale_of_0_or_below(
    scale, tmp_path, monkeypatch
):
    drill, changes = _offline_drill(tmp_path, monkeypatch)
    with pytest.raises(DrillError, match="a speed factor more than 0"):
        drill.start("canary-rollout", ["red"], time_scale=scale)
    assert changes == [] and drill.state.started is None


@pytest.mark.parametrize("baseline", ["nan", "-1", "inf", "soon"])
def test_a_baseline_that_is_not_seconds_is_refused_naming_the_option(baseline, capsys):
    from o11ykit.cli import build_parser

    argv = ["drill", "start", "canary-rollout", "--teams", "red", "--baseline", baseline]
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert (
        f"argument --baseline: {baseline!r} is not a number of seconds: a finite number, 0 or"
        " more (e.g. 60)"
    ) in capsys.readouterr().err


def test_a_baseline_of_0_is_taken():
    from o11ykit.cli import build_parser

    argv = ["drill", "start", "canary-rollout", "--teams", "red", "--baseline", "0"]
    assert build_parser().parse_args(argv).baseline == 0


@pytest.mark.parametrize("baseline", [-1, float("nan"), float("inf")])
def test_a_drill_started_from_python_refuses_a_baseline_that_is_not_seconds(
    baseline, tmp_path, monkeypatch
):
    drill, changes = _offline_drill(tmp_path, monkeypatch)
    with pytest.raises(DrillError, match="a finite number of seconds, 0 or more"):
        drill.start("canary-rollout", ["red"], baseline_s=baseline)
    assert changes == [] and drill.state.started is None


def _run(argv: list[str], drill: Drill | None, monkeypatch) -> int:
    """A drill command as typed, on `drill` (an offline one) instead of a stack's."""
    from labs.drills import cli
    from o11ykit.cli import build_parser

    monkeypatch.setattr(cli, "_drill", lambda args: drill)
    args = build_parser().parse_args(["drill", *argv])
    return args.run(args)


@pytest.mark.parametrize("attr", ["foo", "=globex", "tenant.id=", "="])
def test_a_diagnosis_with_an_attribute_not_key_value_is_refused_naming_the_option(attr, capsys):
    from o11ykit.cli import build_parser

    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["drill", "diagnose", "--team", "blue", f"--attr={attr}"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --attr: {attr!r} is not KEY=VALUE, e.g. tenant.id=acme" in err


def test_an_empty_diagnosis_is_refused_and_not_counted(tmp_path, monkeypatch, capsys):
    drill, _ = _offline_drill(tmp_path, monkeypatch)
    drill.start("canary-rollout", ["blue"], baseline_s=0)
    assert _run(["diagnose", "--team", "blue"], drill, monkeypatch) == 2
    assert "a diagnosis needs at least one of --service" in capsys.readouterr().err
    assert _run(["diagnose", "--team", "blue", "--class", " "], drill, monkeypatch) == 2
    with pytest.raises(DrillError, match="at least one of"):
        drill.diagnose("blue", {"service": "", "attribute": {}})
    assert not [e for e in drill.state.events if e["event"] == "diagnosis"]
    assert drill.state.teams["blue"].wrong_answers == 0
    # A diagnosis that says something is graded and counted as before.
    command = ["diagnose", "--team", "blue", "--service", "catalog", "--attr", "Tenant.ID=x"]
    assert _run(command, drill, monkeypatch) == 1
    assert drill.state.teams["blue"].wrong_answers == 1


def test_status_rounds_the_seconds_for_people():
    from labs.drills.cli import status_line

    row = {
        "team": "blue",
        "acknowledged_s": 29.950979471206665,
        "diagnosed_s": 4.2812,
        "wrong_answers": 2,
        "mitigated_s": None,
        "recovered_s": 3.0,
    }
    assert status_line(row) == (
        "team=blue  acknowledged_s=30  diagnosed_s=4.3  wrong_answers=2  mitigated_s=—"
        "  recovered_s=3"
    )


def test_the_key_shows_the_timeline_as_the_time_scale_plays_it(tmp_path, monkeypatch, capsys):
    drill, _ = _offline_drill(tmp_path, monkeypatch)
    drill.start("canary-rollout", ["red"], time_scale=10, baseline_s=5)
    assert _run(["key"], drill, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "5 s healthy first, then the scenario 10x as fast as written, --time-scale 10" in out
    assert "  t+5s inject bad-canary  (written: t+0s)" in out
    assert "  t+7s inject slow-provider for 4s  (red herring)  (written: t+20s for 40s)" in out
    assert "t+20s inject" not in out


def test_the_key_at_the_written_speed_says_so(tmp_path, monkeypatch, capsys):
    drill, _ = _offline_drill(tmp_path, monkeypatch)
    drill.start("canary-rollout", ["red"], baseline_s=60)
    assert _run(["key"], drill, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "60 s healthy first, then the scenario as written" in out
    assert "  t+80s inject slow-provider for 40s  (red herring)\n" in out


def test_the_postmortem_says_a_mitigation_changed_nothing():
    from types import SimpleNamespace

    events = [
        {"t": 0.0, "event": "mitigation", "team": "red", "name": "disable-retries", "fault": None},
        {"t": 1.0, "event": "mitigation", "team": "blue", "name": "rollback-canary"}
        | {"fault": "bad-canary"},
    ]
    drill = SimpleNamespace(state=SimpleNamespace(events=events))
    english = postmortem._timeline(drill, postmortem._EN)
    assert english[0].endswith(
        "red: mitigated `disable-retries` (changed nothing: that part of the system was healthy)"
    )
    assert english[1].endswith("blue: mitigated `rollback-canary`")
    japanese = postmortem._timeline(drill, postmortem._JA)
    unchanged = "（変更なし：その部分はもともと正常でした）"
    assert japanese[0].endswith(f"red: 緩和 `disable-retries`{unchanged}")


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_drill_list_shows_each_scenario_on_a_line_and_no_key(lang, monkeypatch, capsys):
    assert _run(["list", "--lang", lang], None, monkeypatch) == 0
    lines = capsys.readouterr().out.splitlines()
    shipped = scenario.shipped()
    assert len(lines) == len(shipped) + 1
    for line, chosen in zip(lines, shipped, strict=False):
        assert line.split()[0] == chosen.id and line.endswith(chosen.title(lang))
        assert chosen.root_cause not in line
    assert lines[-1].split()[0] == "fault:<id>"


def _scenario_copy(tmp_path: Path, change) -> Path:
    import yaml

    source = scenario.SCENARIOS_DIR / "bad-import.yaml"
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    change(raw)
    target = tmp_path / "bad-import.yaml"
    target.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return target


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # A typo, or a key the engine has no use for, was dropped without a word.
        (
            lambda raw: raw["timeline"][1].update(duraton_s=30),
            r"bad-import.yaml.timeline\[2\]: unknown field\(s\) duraton_s; accepted: at_s,"
            r" inject, duration_s, red_herring, tenants, users, routes, versions, percent, seed,"
            r" onset_s, ramp_s, params",
        ),
        (
            lambda raw: raw["timeline"][0].update(params={"shares": 1}),
            r"bad-import.yaml.timeline\[1\]: params.shares: unknown param",
        ),
        (
            lambda raw: raw["timeline"][0].update(tenants="globex"),
            r"timeline\[1\].tenants: a list of names",
        ),
        (lambda raw: raw["recovery"].update(p99_ms=9), r"recovery: unknown field\(s\) p99_ms"),
    ],
)
def test_a_scenario_s_unknown_keys_are_refused_naming_the_file_and_field(tmp_path, change, message):
    with pytest.raises(LabError, match=message):
        scenario.load(_scenario_copy(tmp_path, change))


def test_a_timeline_change_s_scope_and_params_reach_the_fault(tmp_path, monkeypatch):
    def scoped(raw: dict) -> None:
        raw["timeline"][0].update(tenants=["acme"], params={"share": 0.5})
        raw["timeline"][1].update(params={"hold_ms": 200, "every_s": 1})

    chosen = scenario.load(_scenario_copy(tmp_path, scoped))
    monkeypatch.setattr(scenario, "get", lambda name: chosen)
    drill, changes = _offline_drill(tmp_path, monkeypatch)
    drill.start("bad-import", ["red"], baseline_s=0)
    drill.tick(drill.state.started + 5.1)
    (_, first, overrides), (_, second, held) = changes
    assert (first, overrides.tenants, overrides.params) == (
        "null-currency",
        ["acme"],
        {"share": 0.5},
    )
    assert (second, held.params) == ("counter-lock", {"hold_ms": 200, "every_s": 1})


@pytest.fixture(scope="module")
def stack(seeded_template, tmp_path_factory) -> Iterator[Stack]:
    directory = seeded_copy(seeded_template, tmp_path_factory.mktemp("drill"))
    config = StackConfig(data_dir=directory, free_ports=True, pseudonym_key="drill-secret")
    with running(config) as started:
        yield started


def _until(condition, timeout: float, drill: Drill) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, drill.state.events[-5:]
        drill.tick()
        time.sleep(0.3)


@pytest.mark.integration
def test_a_whole_drill_end_to_end(stack: Stack, tmp_path):
    drill = Drill(stack.state())
    journal = tmp_path / "traffic.jsonl"
    traffic = TrafficConfig(
        base_url=stack.gateway_url,
        rate=25,
        duration_s=120,
        seed=4,
        focus_tenant="initech",
        focus_share=0.3,
        journal=journal,
    )
    with BackgroundTraffic(traffic):
        drill.start(
            "canary-rollout",
            ["red", "blue"],
            seed=4,
            time_scale=10,
            baseline_s=3,
            recovery_window_s=5,
        )
        with pytest.raises(DrillError, match="is running"):
            drill.start("flash-sale", ["x"])
        _until(lambda: drill.state.incident_started is not None, 15, drill)
        drill.acknowledge("red")
        drill.acknowledge("blue")
        time.sleep(4)  # the incident shows in the traces
        wrong = drill.diagnose(
            "red", {"service": "payments", "version": "0.9.1", "fault_class": "downstream latency"}
        )
        assert not wrong.correct
        right = drill.diagnose(
            "blue", {"service": "catalog", "version": "1.8.0", "fault_class": "bad canary deploy"}
        )
        assert right.correct, [(f.field, f.feedback.en) for f in right.fields]
        assert "nothing to change" in drill.mitigate("red", "restore-cache")
        assert "applied" in drill.mitigate("blue", "rollback-canary")
        _until(lambda: drill.state.recovered is not None, 40, drill)
        time.sleep(0.5)
    state = drill.state
    board = {row["team"]: row for row in scoreboard(state)}
    assert board["red"]["wrong_answers"] == 1 and board["red"]["mitigated_s"] is None
    assert board["blue"]["diagnosed_s"] > board["blue"]["acknowledged_s"] > 0
    assert board["blue"]["recovered_s"] >= board["blue"]["mitigated_s"]
    # A runner that restarts rebuilds the same timings from the log.
    assert scoreboard(Drill(stack.state()).state) == scoreboard(state)

    # Ground truth: the edge's failures as the traffic generator saw them, in the window.
    start, end = state.incident_started, state.recovered
    failed = [
        r
        for r in map(json.loads, journal.read_text().splitlines())
        if r["status"] and r["status"] >= 500 and start <= r["t"] < end
    ]
    impact = drill.impact()
    assert failed, "the incident failed no request"
    assert impact.user_attribute == "enduser.pseudo.id"  # the drill's stack pseudonymises
    assert set(impact.tenants) == {r["tenant"] for r in failed}
    assert abs(impact.distinct_users - len({r["user"] for r in failed})) <= 1
    assert abs(impact.errors - len(failed)) <= 2
    assert impact.p95_during_ms is not None and impact.p50_before_ms is not None

    english, japanese = postmortem.render(drill, "en"), postmortem.render(drill, "ja")
    assert f"Tenants affected: {len(impact.tenants)}" in english
    assert "Friday afternoon canary" in english and "1.8.0" in english
    assert "影響を受けたテナント" in japanese and "## 寄与要因" in japanese
    assert "drill-secret" not in english and not any(
        u in english for u in {r["user"] for r in failed}
    )
    # The postmortem's command reads the incident's window again from the store: the
    # canary's version is what the failures had in common.
    began = "- What the spans where the failures began"
    line = next(x for x in english.splitlines() if x.startswith(began))
    words = shlex.split(line.split("`")[1])
    assert words[:3] == ["o11ykit", "traces", "compare"] and "--start" in words, words
    again = o11ykit_command(*words[1:], data_dir=stack.data_dir)
    assert again.returncode == 0, again.stderr
    assert re.search(r"errors where they began: \d+ spans against \d+", again.stdout), again.stdout
    # Where the failures began, the canary's version is (nearly) every span's: among all
    # errors it was a third, the edge's spans being the rest.
    canary = re.search(r"│ service\.version\s+│ 1\.8\.0\s+│\s+([\d.]+)% ", again.stdout)
    assert canary and float(canary[1]) >= 75, again.stdout
    drill.end()
    assert all(not held for held in drill.faults.status().values())


@pytest.mark.integration
def test_the_drill_commands_keep_the_key_from_participants(stack: Stack):
    def drill(*args: str):
        return o11ykit_command("drill", *args, data_dir=stack.data_dir)

    assert drill("start", "--teams", "red").returncode == 2  # no scenario named
    started = drill(
        "start", "fault:empty-search", "--teams", "red,blue", "--no-traffic", "--baseline", "0"
    )
    assert started.returncode == 0, started.stderr
    assert "empty-search" not in started.stdout
    brief = drill("brief")
    assert "Sales from search dropped to zero" in brief.stdout
    assert "empty-search" not in brief.stdout and "locale" not in brief.stdout
    assert "root cause: empty-search" in drill("key").stdout
    assert drill("ack", "--team", "green").returncode == 2  # no such team
    assert drill("ack", "--team", "red").returncode == 0
    wrong = drill("diagnose", "--team", "red", "--service", "payments", "--class", "ddos")
    assert wrong.returncode == 1 and "score 0/100" in wrong.stdout
    assert drill("mitigate", "--team", "red", "reboot-everything").returncode == 2
    assert "applied" in drill("mitigate", "--team", "red", "fix-locale-filter").stdout
    assert "wrong_answers=1" in drill("status").stdout
    assert drill("end").returncode == 0


def test_every_drill_message_is_in_every_language_with_the_same_fields():
    from string import Formatter

    from labs.drills.words import WORDS

    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in Formatter().parse(text) if name}

    assert set(WORDS) == {"en", "ja"} and set(postmortem._EN) == set(postmortem._JA)
    for key, text in WORDS["en"].items():
        assert fields(WORDS["ja"][key]) == fields(text), key
    assert set(WORDS["ja"]) == set(WORDS["en"])


def test_the_catalogue_s_texts_a_drill_shows_are_in_japanese_too():
    """A `fault:<id>` drill's title and briefing, a postmortem's root cause and action items:
    every catalogue fault has them in Japanese, its kind named as the grading takes it, and
    the briefing gives nothing of the key away."""
    from labs.drills.catalogue_ja import JA, fault_text
    from labs.grading import grade
    from sample_app.faults.catalogue import FAULTS

    assert set(JA) == {fault.id for fault in FAULTS}
    for fault in FAULTS:
        japanese = fault_text(fault, "ja")
        assert japanese == JA[fault.id] and fault_text(fault).mechanism == fault.mechanism
        drill = scenario.from_fault(fault.id)
        assert (drill.title("ja"), drill.briefing("ja")) == (japanese.title, japanese.story)
        assert (drill.title("en"), drill.briefing("en")) == (fault.title, fault.story)
        assert fault.id not in japanese.story and fault.mitigation not in japanese.story
        answer = {"service": drill.key.expected["service"], "fault_class": japanese.fault_class}
        assert grade(drill.key, answer).correct, (fault.id, japanese.fault_class)
    assert "ロケール" not in JA["empty-search"].story  # as "locale" is not in the English


def test_the_drill_commands_speak_japanese(tmp_path, monkeypatch, capsys):
    drill, _ = _offline_drill(tmp_path, monkeypatch)
    monkeypatch.setattr(drill.faults, "status", lambda: {"gateway": [{"id": "bad-canary"}]})
    monkeypatch.setattr(drill.faults, "fix", lambda fault: None)
    drill.start("canary-rollout", ["red", "blue"], time_scale=10, baseline_s=5)
    assert drill.tick(drill.state.started + 7.1, language="ja") == [
        "bad-canary を注入しました",
        "slow-provider を注入しました",
    ]

    def said(*argv: str, code: int = 0) -> str:
        assert _run([*argv, "--lang", "ja"], drill, monkeypatch) == code
        out, err = capsys.readouterr()
        return out + err

    key = said("key")
    assert "根本原因: bad-canary（悪いデプロイ（カナリア））" in key
    assert (
        "タイムライン（ドリル開始からの秒数。最初の 5 秒は正常で、その後シナリオを書かれた速さの"
        in key
    )
    assert "  t+7s slow-provider を注入、4 秒間（おとり）（シナリオ上は t+20s、40 秒間）" in key
    assert "red: アラートを確認しました" in said("ack", "--team", "red")
    wrong = said("diagnose", "--team", "red", "--service", "payments", code=1)
    assert "スコア 0/100" in wrong and "score" not in wrong
    right = ["--service", "catalog", "--version", "1.8.0", "--class", "悪いデプロイ"]
    assert "スコア 100/100: 正解です" in said("diagnose", "--team", "blue", *right)
    assert "診断には --service、--operation" in said("diagnose", "--team", "red", code=2)
    assert "チーム 'green' はありません" in said("ack", "--team", "green", code=2)
    applied = said("mitigate", "--team", "blue", "rollback-canary")
    assert applied == "rollback-canary: 適用しました（ロールバックします。gateway はカナリアに" + (
        "トラフィックを送らなくなります。）\n"
    )
    monkeypatch.setattr(drill.faults, "status", lambda: {})
    unchanged = said("mitigate", "--team", "red", "restore-cache")
    assert "restore-cache: 変更するものはありません" in unchanged
    assert "緩和策 'reboot' はありません" in said("mitigate", "--team", "red", "reboot", code=2)
    status = said("status")
    assert "チーム blue、確認 —、診断 " in status and " 秒、誤答 0、緩和 " in status
    assert "acknowledged_s" not in status
    assert said("end") == "ドリルを終了しました。障害は解除されています\n"
    assert "実行中のドリルはありません" in said("ack", "--team", "red", code=2)


def test_a_status_row_in_japanese():
    from labs.drills.cli import status_line

    row = {"team": "blue", "acknowledged_s": 29.95, "diagnosed_s": 4.2812, "wrong_answers": 2}
    row |= {"mitigated_s": None, "recovered_s": 3.0}
    assert status_line(row, "ja") == (
        "チーム blue、確認 30 秒、診断 4.3 秒、誤答 2、緩和 —、回復 3 秒"
    )


def test_the_postmortem_in_japanese_gives_the_root_cause_and_timeline_in_japanese():
    from types import SimpleNamespace

    from labs.drills.catalogue_ja import JA
    from labs.drills.state import replay
    from labs.drills.telemetry import Health, Impact
    from sample_app.faults.catalogue import BY_ID

    health = Health(True, 120, 0.004, 210.0, "gone")
    events = [
        {"t": 0.0, "event": "drill_started", "scenario": "canary-rollout", "seed": 1}
        | {"time_scale": 1.0, "teams": ["red"], "baseline_s": 0.0},
        {"t": 1.0, "event": "change_applied", "index": 0, "fault": "bad-canary"}
        | {"action": "inject"},
        {"t": 40.0, "event": "mitigation", "team": "red", "name": "rollback-canary"}
        | {"fault": "bad-canary", "addresses_root_cause": True},
        {"t": 80.0, "event": "recovered", "health": health.describe()}
        | {"measured": health.__dict__},
        {"t": 90.0, "event": "ended"},
    ]
    impact = Impact(["initech"], 3, "enduser.id", 12, 400, None, 90.0, 20.0, 900.0)
    query = JaegerQuery("http://127.0.0.1:16686")
    drill = SimpleNamespace(
        scenario=scenario.get("canary-rollout"),
        impact=lambda: impact,
        state=replay(events),
        query=query,
    )
    japanese, english = postmortem.render(drill, "ja"), postmortem.render(drill, "en")
    cause = JA["bad-canary"]
    assert f"**{cause.title}**（{cause.fault_class}）。{cause.mechanism}" in japanese
    assert f"| 修正を恒久化する: {cause.fix} | | |" in japanese and cause.signal in japanese
    for said in ("ドリル開始: canary-rollout、チーム red", "注入 `bad-canary`", "ドリル終了"):
        assert said in japanese, said
    assert "回復: gateway のエラー率 0.4%、p95 210 ms（リクエスト 120 件）" in japanese
    assert "根本原因のシグナル: 消えました" in japanese
    assert "| red | — | — | 0 | 40 秒 | 80 秒 |" in japanese and "発生前 データなし" in japanese
    fault = BY_ID["bad-canary"]
    for english_only in (
        fault.mechanism,
        fault.fix,
        "drill started",
        "drill ended",
        "gateway error",
    ):
        assert english_only not in japanese, english_only
    assert f"**{fault.title}** ({fault.fault_class}). {fault.mechanism}" in english
    assert "recovered: gateway error rate 0.4%, p95 210 ms over 120 requests" in english
    assert "- 00:00:01 UTC — inject `bad-canary`" in english and "before n/a" in english
    # The incident's window, from the injection to recovery, to the second, read again:
    window = "--start 1970-01-01T00:00:01Z --end 1970-01-01T00:01:20Z"
    assert f"`o11ykit traces compare --origin-errors {window}`" in english
    assert f"`o11ykit traces breakdown --service gateway --by tenant.id {window}`" in japanese
    assert "## インシデント中のトレース" in japanese and "## Traces of the incident" in english
    link = "http://127.0.0.1:16686/search?service=gateway&tags=%7B%22error%22%3A%22true%22%7D"
    assert f"<{link}&lookback=custom&start=1000000&end=80000000&limit=20>" in english


def test_the_postmortem_names_another_query_address_without_its_password():
    from types import SimpleNamespace

    from labs.drills.state import replay

    events = [
        {"t": 10.4, "event": "drill_started", "scenario": "canary-rollout", "seed": 1}
        | {"time_scale": 1.0, "teams": ["red"], "baseline_s": 0.0},
        {"t": 12.5, "event": "change_applied", "index": 0, "fault": "bad-canary"}
        | {"action": "inject"},
        {"t": 30.2, "event": "ended"},
    ]
    drill = SimpleNamespace(state=replay(events), query=JaegerQuery("http://ann:pw@h.test:9/"))
    lines = postmortem._look_again(drill, postmortem._EN)
    # Never recovered: the window ends with the drill, whole seconds around it.
    window = "--start 1970-01-01T00:00:12Z --end 1970-01-01T00:00:31Z"
    assert f"{window} --url 'http://***@h.test:9'`" in lines[2]
    assert "pw" not in "\n".join(lines) and "<http://***@h.test:9/search?" in lines[4]
    before_any_fault = SimpleNamespace(state=replay(events[:1]), query=drill.query)
    assert postmortem._look_again(before_any_fault, postmortem._EN) == []


def test_a_lab_refused_during_a_drill_says_so_in_japanese(tmp_path, monkeypatch):
    from labs.cli import refuse_during_a_drill

    drill, _ = _offline_drill(tmp_path, monkeypatch)
    drill.start("flash-sale", ["red"], baseline_s=60)
    with pytest.raises(SystemExit, match=r"このシステムではドリル（flash-sale）が実行中です"):
        refuse_during_a_drill(drill.stack_state, "ja")
    with pytest.raises(SystemExit, match=r"a drill \(flash-sale\) is running on this system"):
        refuse_during_a_drill(drill.stack_state)


@pytest.mark.parametrize(
    ("name", "english", "japanese"),
    [
        (
            "canary-rollot",
            "no scenario 'canary-rollot'; shipped: ",
            "シナリオ 'canary-rollot' はありません",
        ),
        (
            "fault:n-plus-two",
            "unknown fault 'n-plus-two'; the catalogue has: ",
            "障害 'n-plus-two' は",
        ),
    ],
)
def test_an_unknown_scenario_is_refused_in_the_drills_language(
    name, english, japanese, tmp_path, monkeypatch, capsys
):
    drill, changes = _offline_drill(tmp_path, monkeypatch)
    with pytest.raises(DrillError) as refused:
        drill.start(name, ["red"])
    assert str(refused.value).startswith(english)
    assert refused.value.said("ja").startswith(japanese)
    assert changes == [] and drill.state.started is None
    assert _run(["start", name, "--teams", "red", "--lang", "ja"], drill, monkeypatch) == 2
    assert capsys.readouterr().err.startswith(f"o11ykit drill: {japanese}")
