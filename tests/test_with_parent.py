"""sample_app.with_parent: a service started for the stack dies with the process that
started it, asked for by the child after exec (no preexec_fn between fork and exec)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")


def _state(pid: int) -> str | None:
    """The kernel's state letter of a process, None once it is gone (a zombie is gone too)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return None if state in ("Z", "X") else state


def test_the_child_ends_when_the_process_that_started_it_is_killed():
    # The parent starts a never-ending module (an HTTP server on a free loopback port)
    # through the launcher, says its pid, then waits to be killed.
    parent_code = textwrap.dedent(
        """
        import os, subprocess, sys, time
        child = subprocess.Popen(
            [sys.executable, "-m", "sample_app.with_parent", str(os.getpid()),
             "http.server", "0", "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        print(child.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    try:
        time.sleep(0.5)  # past the launcher's own check, into the server
        assert _state(child) is not None, "the child ended before its parent"
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _state(child) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _state(child) is None, "the child outlived the process that started it"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if _state(child) is not None:
            os.kill(child, signal.SIGKILL)


def _launch(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sample_app.with_parent", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_child_whose_parent_is_already_gone_does_not_start():
    # Pid 1 is not its parent: as if the parent had died before the death signal was set.
    done = _launch("1", "http.server", "0")
    assert done.returncode == 1
    assert "http.server: the process that started it (1) has already exited" in done.stderr


@pytest.mark.parametrize("argv", [[], ["123"], ["abc", "http.server"]])
def test_a_malformed_command_line_says_how_to_call_it(argv):
    done = _launch(*argv)
    assert done.returncode == 1
    assert done.stderr == "usage: python -m sample_app.with_parent PID MODULE [ARG...]\n"
