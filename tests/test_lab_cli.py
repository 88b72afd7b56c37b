"""`o11ykit lab` as a learner types it: start (which brings the system up), hint, answer,
check, stop; then `o11ykit app down` leaves no process behind."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from labs import model
from sample_app.stack import read_state
from tests.support.sample_stack import o11ykit_command as _o11ykit
from tests.support.sample_stack import seeded_copy, wait_gone

pytestmark = pytest.mark.integration


def test_a_lab_from_start_to_stop_on_the_command_line(seeded_template, tmp_path):
    data_dir = seeded_copy(seeded_template, tmp_path / "d")
    try:
        start = _o11ykit(
            "lab", "start", "failing-tenant", "--free-ports", "--lang", "ja", data_dir=data_dir
        )
        assert start.returncode == 0, start.stderr
        assert "どのテナントが失敗していて" in start.stdout
        assert "o11ykit traces breakdown --by tenant.id --service gateway" in start.stdout
        # On free ports: each command printed names the store, to be pasted as it is.
        store = read_state(data_dir)["query_url"]
        assert store != "http://127.0.0.1:16686"
        looks = [line for line in start.stdout.splitlines() if "→ o11ykit traces" in line]
        assert looks and all(line.endswith(f" --url {store}") for line in looks), looks
        assert "（初級・25 分）" in start.stdout
        jaeger = _o11ykit("lab", "look", "1", "--backend", "jaeger", data_dir=data_dir)
        assert "/search?service=gateway" in jaeger.stdout and "lookback=custom" in jaeger.stdout
        hint = _o11ykit("lab", "hint", data_dir=data_dir)
        assert hint.stdout.startswith("ヒント 1/3")
        # In the language the lab started in, without --lang again.
        assert model.get("failing-tenant").hints[0].ja in hint.stdout
        wrong = _o11ykit(
            "lab",
            "answer",
            "--service",
            "gateway",
            "--attr",
            "tenant.id=acme",
            "--class",
            "cosmic rays",
            "--count",
            "1",
            data_dir=data_dir,
        )
        assert wrong.returncode == 1 and "½ service" in wrong.stdout
        assert "隣のサービス" in wrong.stdout
        check = _o11ykit("lab", "check", data_dir=data_dir)
        assert "回答 1 件" in check.stdout and check.returncode == 1
        stop = _o11ykit("lab", "stop", data_dir=data_dir)
        assert stop.returncode == 0, stop.stderr
    finally:
        _o11ykit("app", "down", data_dir=data_dir)
    assert wait_gone(data_dir) == []


def test_prove_in_a_lab_without_a_fault_says_why_there_is_nothing_to_flip(
    seeded_template, tmp_path
):
    data_dir = seeded_copy(seeded_template, tmp_path / "d")
    try:
        start = _o11ykit("lab", "start", "first-trace", "--free-ports", data_dir=data_dir)
        assert start.returncode == 0, start.stderr
        prove = _o11ykit("lab", "prove", data_dir=data_dir)
        assert prove.returncode == 0, prove.stderr
        assert "This lab has no fault, so there is no fix switch" in prove.stdout
        assert "Traceback" not in prove.stderr
    finally:
        _o11ykit("app", "down", data_dir=data_dir)
    assert wait_gone(data_dir) == []


def test_starting_another_lab_stops_the_one_running(seeded_template, tmp_path):
    """Two labs' faults must never mix: the second start clears the first's fault and ends
    its traffic, and says how long its traces stay in the new lab's looks."""
    data_dir = seeded_copy(seeded_template, tmp_path / "d")
    try:
        first = _o11ykit("lab", "start", "failing-tenant", "--free-ports", data_dir=data_dir)
        assert first.returncode == 0, first.stderr
        first_traffic = json.loads((data_dir / "lab.json").read_text())["traffic_pid"]
        assert _alive(first_traffic)
        second = _o11ykit("lab", "start", "slow-query", data_dir=data_dir)
        assert second.returncode == 0, second.stderr
        assert "stopped the lab failing-tenant: its fault is cleared and its traffic ended" in (
            second.stdout
        )
        assert "failing-tenant's traces stay in the store" in second.stdout
        assert _injected(data_dir) == {"missing-index"}
        deadline = time.monotonic() + 10
        while _alive(first_traffic) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(first_traffic)
    finally:
        _o11ykit("app", "down", data_dir=data_dir)
    assert wait_gone(data_dir) == []


def _injected(data_dir) -> set[str]:
    """The ids of the faults injected on the stack, in any service."""
    status = json.loads(_o11ykit("fault", "status", data_dir=data_dir).stdout)
    return {fault["id"] for faults in status.values() for fault in faults}


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent (the lab command that started it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_drill_stops_the_lab_running_and_a_lab_waits_for_the_drill(seeded_template, tmp_path):
    """A lab's fault would be one more for a drill's teams to find, and not the drill's."""
    data_dir = seeded_copy(seeded_template, tmp_path / "d")
    try:
        lab = _o11ykit("lab", "start", "failing-tenant", "--free-ports", data_dir=data_dir)
        assert lab.returncode == 0, lab.stderr
        refused = _o11ykit("drill", "start", "nosuch", "--teams", "red", data_dir=data_dir)
        assert refused.returncode == 2 and "nosuch" in refused.stderr
        assert "null-currency" in _injected(data_dir)  # a refused start changed nothing
        drill = _o11ykit(
            "drill", "start", "flash-sale", "--teams", "red", "--no-traffic", data_dir=data_dir
        )
        assert drill.returncode == 0, drill.stderr
        assert "stopped the lab failing-tenant: its fault is cleared" in drill.stdout
        status = json.loads(_o11ykit("fault", "status", data_dir=data_dir).stdout)
        assert "null-currency" not in {
            fault["id"] for faults in status.values() for fault in faults
        }
        during = _o11ykit("lab", "start", "slow-query", data_dir=data_dir)
        assert during.returncode == 1
        assert "a drill (flash-sale) is running" in during.stderr
        status = json.loads(_o11ykit("fault", "status", data_dir=data_dir).stdout)
        assert "missing-index" not in {
            fault["id"] for faults in status.values() for fault in faults
        }
        assert _o11ykit("drill", "end", data_dir=data_dir).returncode == 0
        after = _o11ykit("lab", "start", "slow-query", data_dir=data_dir)
        assert after.returncode == 0, after.stderr
    finally:
        _o11ykit("app", "down", data_dir=data_dir)
    assert wait_gone(data_dir) == []


def test_a_mistyped_lab_is_refused_before_the_system_starts(tmp_path):
    data_dir = tmp_path / "d"
    try:
        start = _o11ykit(
            "lab", "start", "failing-tenent", "--free-ports", "--lang", "ja", data_dir=data_dir
        )
        assert start.returncode == 1, start.stdout + start.stderr
        assert start.stderr.startswith("ラボ 'failing-tenent' はありません。ラボは first-trace, ")
        # Nothing seeded, nothing started: the typo left no system running.
        assert read_state(data_dir) is None and not (data_dir / "logs").exists()
    finally:
        if read_state(data_dir) is not None:  # what the failure started, if it failed
            _o11ykit("app", "down", data_dir=data_dir)
