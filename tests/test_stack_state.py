"""A stack's state file names processes by pid and start time: a pid that names another
program by now (the stack died, the machine rebooted, pids wrapped) is never signalled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sample_app import stack
from sample_app.cli import _any_alive
from sample_app.companions import process_started, register_companion, take_companions

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="start times are read from /proc (Linux)"
)


@pytest.fixture
def bystander():
    """Another program, running under a pid a stale state file may name."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _state(data_dir: Path, pid: int, started: str | None) -> dict:
    return {
        "data_dir": str(data_dir),
        "store_pid": None,
        "services": {"gateway": {"port": 1, "pid": pid, "started": started, "url": "x"}},
    }


def test_a_pid_that_names_another_program_now_is_left_alone(tmp_path, bystander):
    stale = _state(tmp_path, bystander.pid, "1")  # recorded for a process long gone
    assert not _any_alive(stale)  # `app up` is not refused for it
    assert stack.stop_from_state(stale, timeout=1) == []  # nor is it stopped by `app down`
    assert bystander.poll() is None


def test_the_process_recorded_is_stopped(tmp_path, bystander):
    recorded = _state(tmp_path, bystander.pid, process_started(bystander.pid))
    assert _any_alive(recorded)
    assert stack.stop_from_state(recorded, timeout=5) == ["gateway"]
    assert bystander.wait(5) is not None


def test_a_companion_recorded_for_another_process_is_forgotten_not_signalled(tmp_path, bystander):
    register_companion(tmp_path, "traffic", bystander.pid)
    pid_file = tmp_path / "companions" / "traffic.pid"
    assert pid_file.read_text() == f"{bystander.pid} {process_started(bystander.pid)}"
    pid_file.write_text(f"{bystander.pid} 1")
    assert take_companions(tmp_path) == {}
    assert not pid_file.exists() and bystander.poll() is None
