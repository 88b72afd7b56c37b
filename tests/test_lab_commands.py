"""`o11ykit lab` and `o11ykit drill` commands on systems no lab expected: one exporting
elsewhere, one whose processes died, one whose data directory was given relative; a lab
started again; the tour and `lab look` refusing what they cannot do. No system runs here:
a sleeping process stands in for the services, and nothing is asked of one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from labs import model, session
from labs.cli import show_result
from o11ykit.cli import build_parser
from sample_app.companions import process_started, register_companion
from sample_app.stack import STATE_FILE

DEAD_PID = 2**30  # above any pid_max: no process has it


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def no_faults(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fault injections recorded instead of sent: nothing answers here."""
    calls: list[str] = []
    monkeypatch.setattr(
        session.StackFaults, "inject", lambda self, fault, overrides=None: calls.append(fault)
    )
    monkeypatch.setattr(session.StackFaults, "clear", lambda self, fault=None: None)
    return calls


def _system(
    directory: Path, pid: int, query_url: str | None = None, data_dir: str | None = None
) -> Path:
    """A state file as `o11ykit app up` writes it, its one service process `pid`."""
    directory.mkdir(parents=True, exist_ok=True)
    service = {"url": "http://127.0.0.1:9", "pid": pid, "started": process_started(pid)}
    state = {
        "data_dir": data_dir or str(directory),
        "query_url": query_url,
        "store_pid": None,
        "token": "t",
        "services": {"gateway": service},
    }
    (directory / STATE_FILE).write_text(json.dumps(state))
    return directory


def _progress(directory: Path, lab: str = "failing-tenant", **fields: Any) -> None:
    progress = {"lab": lab, "hints": 0, "answers": [], "started": None, "traffic_pid": None}
    (directory / session.PROGRESS_FILE).write_text(json.dumps({**progress, **fields}))


def _saved(directory: Path) -> dict[str, Any]:
    return json.loads((directory / session.PROGRESS_FILE).read_text())


def _run(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return args.run(args)


# ---- a system exporting elsewhere ---------------------------------------------------------


def test_an_answer_on_a_system_exporting_elsewhere_is_graded_without_its_count(
    tmp_path, sleeper, capsys
):
    directory = _system(tmp_path / "d", sleeper.pid)
    _progress(directory)
    code = _run(
        "lab", "answer", "--data-dir", str(directory), "--service", "catalog",
        "--attr", "tenant.id=globex", "--class", "data error", "--count", "12",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "count: not graded: only the local trace store can tell it" in out
    assert "score: 100/100" in out
    (recorded,) = _saved(directory)["answers"]
    assert recorded["score"] == 100 and recorded["ungraded"] == ["count"]


def test_solve_on_a_system_exporting_elsewhere_is_refused(tmp_path, sleeper, capsys):
    directory = _system(tmp_path / "d", sleeper.pid)
    _progress(directory)
    assert _run("lab", "solve", "--data-dir", str(directory)) == 1
    assert capsys.readouterr().err == (
        "o11ykit lab solve: solve reads the local trace store, and this stack exports"
        " elsewhere (`o11ykit app up --backend local`, the default, keeps the spans here)\n"
    )


@pytest.mark.parametrize("command", [["status"], ["brief"], ["ack", "--team", "red"]])
def test_drill_commands_on_a_system_exporting_elsewhere_are_refused(
    command, tmp_path, sleeper, capsys
):
    directory = _system(tmp_path / "d", sleeper.pid)
    assert _run("drill", *command, "--data-dir", str(directory)) == 2
    assert "drills read the local trace store" in capsys.readouterr().err


# ---- a system whose processes died without `app down` --------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["lab", "hint"], ["lab", "answer", "--count", "3"], ["drill", "status"]],
    ids=" ".join,
)
def test_commands_on_a_system_whose_processes_died_say_it_is_not_running(argv, tmp_path):
    directory = _system(tmp_path / "d", DEAD_PID, query_url="http://127.0.0.1:9")
    _progress(directory)
    with pytest.raises(SystemExit) as exited:
        _run(*argv, "--data-dir", str(directory))
    assert str(exited.value.code).startswith("the sample system is not running")


def test_a_start_on_a_system_whose_processes_died_brings_it_up_again(
    tmp_path, sleeper, no_faults, monkeypatch, capsys
):
    from sample_app import stack

    directory = _system(tmp_path / "d", DEAD_PID, query_url="http://127.0.0.1:9")
    started: list[Path] = []

    class Started:
        def __init__(self, config: stack.StackConfig) -> None:
            self.directory = Path(config.data_dir)

        def start(self, progress: Any) -> Started:
            started.append(self.directory)
            _system(self.directory, sleeper.pid, query_url="http://127.0.0.1:9")
            return self

        def state(self) -> dict[str, Any]:
            return stack.read_state(self.directory)

    monkeypatch.setattr(stack, "Stack", Started)
    assert _run("lab", "start", "slow-query", "--no-traffic", "--data-dir", str(directory)) == 0
    assert started == [directory] and no_faults == ["missing-index"]
    assert json.loads((directory / STATE_FILE).read_text())["services"]["gateway"]["pid"] == (
        sleeper.pid
    )


# ---- a relative --data-dir ------------------------------------------------------------------


def test_a_relative_data_dir_in_the_state_file_is_read_where_the_file_is(
    tmp_path, sleeper, monkeypatch, capsys
):
    # `o11ykit app up --data-dir real` run in tmp_path records "real" as it was typed.
    directory = _system(tmp_path / "real", sleeper.pid, data_dir="real")
    _progress(directory, hints=1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert _run("lab", "hint", "--data-dir", str(directory)) == 0
    assert capsys.readouterr().out.startswith("hint 2 of 3: ")
    assert _saved(directory)["hints"] == 2
    assert not (elsewhere / "real").exists()


# ---- a lab started again ----------------------------------------------------------------------


def test_starting_the_same_lab_again_starts_it_afresh_and_says_so(
    tmp_path, sleeper, no_faults, capsys
):
    directory = _system(tmp_path / "d", sleeper.pid)
    answers = [{"time": "2026-01-01T00:00:00+00:00", "answer": {}, "score": 0}] * 3
    _progress(directory, hints=3, answers=answers)
    assert _run("lab", "start", "failing-tenant", "--no-traffic", "--data-dir", str(directory)) == 0
    out = capsys.readouterr().out
    assert (
        "started failing-tenant afresh: the earlier run's 3 hint(s) and 3 answer(s) are forgotten"
    ) in out
    assert _saved(directory)["hints"] == 0 and _saved(directory)["answers"] == []
    assert _run("lab", "hint", "--data-dir", str(directory)) == 0
    assert capsys.readouterr().out.startswith("hint 1 of 3: ")


def test_starting_another_lab_stops_the_earlier_one_and_forgets_nothing_of_its_own(
    tmp_path, sleeper, no_faults, capsys
):
    directory = _system(tmp_path / "d", sleeper.pid)
    traffic = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        register_companion(directory, session.LAB_TRAFFIC, traffic.pid)
        _progress(directory, hints=2, traffic_pid=traffic.pid)
        argv = ["lab", "start", "slow-query", "--no-traffic", "--data-dir", str(directory)]
        assert _run(*argv) == 0
        assert traffic.wait(10) is not None
    finally:
        traffic.kill()
        traffic.wait()
    out = capsys.readouterr().out
    assert "stopped the lab failing-tenant: its fault is cleared and its traffic ended" in out
    assert "afresh" not in out
    assert _saved(directory)["lab"] == "slow-query"


def test_a_first_start_says_nothing_of_forgetting(tmp_path, sleeper, no_faults, capsys):
    directory = _system(tmp_path / "d", sleeper.pid)
    assert _run("lab", "start", "failing-tenant", "--no-traffic", "--data-dir", str(directory)) == 0
    assert "afresh" not in capsys.readouterr().out


# ---- lab look, lab list ---------------------------------------------------------------------


@pytest.mark.parametrize("step", ["0", "-1", "9"])
def test_look_refuses_a_step_the_lab_does_not_have(step, tmp_path, sleeper):
    directory = _system(tmp_path / "d", sleeper.pid)
    _progress(directory)
    steps = len(model.get("failing-tenant").steps)
    with pytest.raises(SystemExit) as exited:
        _run("lab", "look", step, "--data-dir", str(directory))
    assert exited.value.code == f"step {step}: this lab has steps 1 to {steps}"


def _breakdown(groups: int, more: int) -> dict[str, Any]:
    row = {"count": 5, "errors": 0, "errorRate": 0.0, "p50Ms": 1.0, "p95Ms": 2.0, "p99Ms": 3.0}
    return {
        "kind": "breakdown",
        "total": 5 * (groups + more),
        "groupBy": "enduser.id",
        "source": "span column",
        "groups": [{"value": f"u{n}", **row} for n in range(groups)],
        "moreGroups": more,
    }


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("en", "... and 38 more rows (the command above shows 50 of the 70 groups: give it"
         " `--limit 70` for more)"),
        ("ja", "...ほか 38 行（上のコマンドが表示するのは 70 グループのうち 50 グループです。"
         "`--limit 70` を付けるとさらに表示できます）"),
    ],
)  # fmt: skip
def test_rows_past_the_command_s_limit_are_not_said_to_be_in_it(language, said):
    console = Console(width=200, record=True, highlight=False)
    show_result(console, _breakdown(50, 20), language)
    assert said in console.export_text()


def test_rows_the_command_shows_are_said_to_be_in_it():
    console = Console(width=200, record=True, highlight=False)
    show_result(console, _breakdown(30, 0))
    assert "... and 18 more rows (the command above shows them all)" in console.export_text()


def test_lab_list_in_japanese_lines_its_columns_up(capsys):
    assert _run("lab", "list", "--lang", "ja") == 0
    lines = capsys.readouterr().out.splitlines()
    # Where each line's minutes end, in terminal columns: a kanji takes two.
    ends = {cell_len(line[: re.search(r"\d+ 分", line).end()]) for line in lines}
    assert len(lines) == len(model.all_labs()) and len(ends) == 1, lines


# ---- the tour's refusals ----------------------------------------------------------------------


def test_the_tour_refuses_a_lab_there_is_not(capsys):
    from labs import tour

    with pytest.raises(SystemExit) as exited:
        tour.main(["--lab", "nope"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --lab: invalid choice: 'nope'" in err and "'failing-tenant'" in err


def test_the_tour_refuses_a_language_it_does_not_speak(monkeypatch, capsys):
    from labs import tour

    monkeypatch.setenv("O11YKIT_LANG", "fr")
    with pytest.raises(SystemExit) as exited:
        tour.main([])
    assert exited.value.code == 2
    assert "O11YKIT_LANG=fr: accepted: en, ja" in capsys.readouterr().err
