"""The main job, `python3 dev.py start`, runs unattended and shows what it promises."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def test_walkthrough_runs_without_a_terminal() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "examples.walkthrough"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "CI": "true"},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tenant.id=acme enduser.id=alice" in result.stdout
    span_lines = [line for line in result.stdout.splitlines() if line.startswith("    [hello]")]
    assert len(span_lines) >= 6
    assert not any("s3cret" in line for line in span_lines)
    assert not any("evil" in line or "mallory" in line for line in span_lines)
