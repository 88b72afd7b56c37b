"""A whole drill played by a script on the local stack: a wrong diagnosis, a right one,
a mitigation, recovery verified from the traces; then the postmortem's impact checked
against the ground truth of what the traffic generator saw, and the timings surviving a
restart of the runner (the state is rebuilt from the log)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator

import pytest

from labs.drills import postmortem, scenario
from labs.drills.drill import Drill, DrillError
from labs.drills.state import scoreboard
from sample_app.stack import Stack, StackConfig, running
from sample_app.traffic import DEFAULT_MIX, BackgroundTraffic, TrafficConfig
from tests.support.sample_stack import o11ykit_command, seeded_copy

pytestmark = pytest.mark.integration


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
        for name in (fault.fault_class, *fault.aliases):
            answer = {"service": service, "fault_class": name}
            assert grade(key, answer).correct, (fault.id, name)
        for other in FAULTS:
            if other.id != fault.id:
                for name in (other.fault_class, *other.aliases):
                    answer = {"service": service, "fault_class": name}
                    assert not grade(key, answer).correct, (fault.id, other.id, name)


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
    command = traffic_command(flash, "http://x", tmp_path / "j")
    assert command[command.index("--focus-tenant") + 1] == "wonka"


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
            time_scale=0.1,
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
    drill.end()
    assert all(not held for held in drill.faults.status().values())


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
