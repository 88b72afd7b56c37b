"""What a lab start does about the lab started before it, whatever that one's progress file
says (tests/test_lab_cli.py plays the running case on a real system)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rich.console import Console

from labs import session
from labs.cli import say_earlier_lab
from labs.drills.drill import DRILL_DIR, JOURNAL, running_drill
from labs.drills.journal import DrillLog
from labs.session import EarlierLab, stop_earlier_lab
from sample_app.companions import end_companion, recorded_companion, register_companion


@pytest.fixture
def state(tmp_path: Path) -> dict:
    # No service answers here: nothing may be asked of one except through the faults stub.
    services = {"catalog": {"url": "http://127.0.0.1:9"}}
    return {"data_dir": str(tmp_path), "services": services, "token": "t", "query_url": None}


@pytest.fixture
def cleared(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(session.StackFaults, "clear", lambda self, fault=None: calls.append(fault))
    return calls


@pytest.fixture
def sleeper():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def _progress(state: dict, **fields: object) -> None:
    (Path(state["data_dir"]) / session.PROGRESS_FILE).write_text(json.dumps(fields))


def _ended(process: subprocess.Popen, timeout: float = 10) -> bool:
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_nothing_to_do_without_an_earlier_lab_or_for_the_same_lab(state, cleared):
    assert stop_earlier_lab(state, "slow-query") is None
    (Path(state["data_dir"]) / session.PROGRESS_FILE).write_text("{not json")
    assert stop_earlier_lab(state, "slow-query") is None
    _progress(state, lab="slow-query", traffic_pid=None)
    assert stop_earlier_lab(state, "slow-query") is None
    assert cleared == []


def test_a_lab_stopped_before_keeps_its_stop_time_and_is_left_alone(state, cleared):
    stopped = datetime(2026, 12, 6, 14, 0, tzinfo=timezone.utc)
    _progress(state, lab="failing-tenant", traffic_pid=None, stopped=stopped.isoformat())
    earlier = stop_earlier_lab(state, "slow-query")
    assert earlier == EarlierLab("failing-tenant", "null-currency", stopped, stopped_now=False)
    assert cleared == []


def test_a_lab_still_running_is_stopped_now(state, cleared, sleeper):
    register_companion(state["data_dir"], session.LAB_TRAFFIC, sleeper.pid)
    _progress(state, lab="failing-tenant", traffic_pid=sleeper.pid)
    earlier = stop_earlier_lab(state, None)  # a drill starting
    assert earlier is not None and earlier.stopped_now and earlier.stopped is not None
    assert cleared == ["null-currency"]
    assert _ended(sleeper)
    saved = json.loads((Path(state["data_dir"]) / session.PROGRESS_FILE).read_text())
    assert saved["traffic_pid"] is None and saved["stopped"]


def test_a_pid_the_system_no_longer_records_is_not_signalled(state, cleared, sleeper):
    """Left by a version that did not record the stop, or by a lab whose system was stopped
    since: that pid may be another program's by now."""
    _progress(state, lab="failing-tenant", traffic_pid=sleeper.pid)
    earlier = stop_earlier_lab(state, "slow-query")
    assert earlier == EarlierLab("failing-tenant", "null-currency", None, stopped_now=False)
    assert cleared == ["null-currency"]  # a fault injected without traffic still goes
    assert not _ended(sleeper, timeout=0.3)


def test_a_lab_this_version_does_not_know_still_has_its_traffic_ended(state, cleared, sleeper):
    register_companion(state["data_dir"], session.LAB_TRAFFIC, sleeper.pid)
    _progress(state, lab="renamed-lab", traffic_pid=sleeper.pid)
    earlier = stop_earlier_lab(state, "slow-query")
    assert earlier == EarlierLab("renamed-lab", None, None, stopped_now=True, known=False)
    assert _ended(sleeper)
    assert cleared == []


def _said(earlier: EarlierLab, language: str = "en") -> str:
    out = io.StringIO()
    say_earlier_lab(Console(file=out, width=200), earlier, window_s=900, language=language)
    return out.getvalue()


def test_what_a_start_says_about_the_earlier_lab():
    recently = datetime.now(timezone.utc) - timedelta(minutes=5)
    said = _said(EarlierLab("failing-tenant", "null-currency", recently, stopped_now=True))
    assert "stopped the lab failing-tenant: its fault is cleared" in said
    assert f"until {recently + timedelta(minutes=15):%H:%M} UTC" in said
    long_ago = recently - timedelta(hours=1)
    assert _said(EarlierLab("failing-tenant", "null-currency", long_ago, False)) == ""
    assert _said(EarlierLab("failing-tenant", "null-currency", None, False)) == ""
    assert _said(EarlierLab("first-trace", None, recently, stopped_now=False)) == ""
    unknown = _said(EarlierLab("renamed-lab", None, None, stopped_now=True, known=False))
    assert "renamed-lab, which this version does not know" in unknown


def test_what_a_start_says_about_the_earlier_lab_in_japanese():
    recently = datetime.now(timezone.utc) - timedelta(minutes=5)
    said = _said(EarlierLab("failing-tenant", "null-currency", recently, True), "ja")
    assert "ラボ failing-tenant を止めました。障害は解除され" in said
    assert f"{recently + timedelta(minutes=15):%H:%M} UTC まではそれらも表示されます" in said
    assert "stopped the lab" not in said and "stay in the store" not in said
    unknown = EarlierLab("renamed-lab", None, None, stopped_now=True, known=False)
    assert "このバージョンが知らないラボ renamed-lab" in (unknown.stopped_text("ja") or "")


def test_a_drill_is_running_from_its_start_to_its_end(tmp_path: Path):
    assert running_drill(tmp_path) is None
    log = DrillLog(tmp_path / DRILL_DIR / JOURNAL)
    log.append(
        "drill_started", scenario="flash-sale", teams=["red"], seed=1, time_scale=1.0,
        baseline_s=60.0, recovery_window_s=60.0,
    )  # fmt: skip
    assert running_drill(tmp_path) == "flash-sale"
    log.append("ended")
    assert running_drill(tmp_path) is None


def test_only_the_recorded_companion_is_signalled(tmp_path: Path, sleeper):
    assert not end_companion(tmp_path, "drill-traffic")  # none recorded
    register_companion(tmp_path, "drill-traffic", sleeper.pid)
    assert not end_companion(tmp_path, "drill-traffic", pid=sleeper.pid + 1)
    assert not _ended(sleeper, timeout=0.3)
    assert end_companion(tmp_path, "drill-traffic")
    assert _ended(sleeper)
    assert recorded_companion(tmp_path, "drill-traffic") is None
