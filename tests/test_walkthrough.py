"""The main job, `python3 dev.py start`, runs unattended and shows what it promises."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def test_walkthrough_runs_on_the_local_store_without_a_terminal() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "examples.walkthrough"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CI": "true"},
        stdin=subprocess.DEVNULL,
    )
    # The walk-through checks each trace it reads back and exits non-zero on a broken promise.
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "tenant.id=acme" in out and "enduser.id=alice" in out
    assert "url.query=q=kettle&token=[REDACTED]" in out
    requested = [line for line in out.splitlines() if "s3cret" in line]
    assert requested == ["  GET /products/1?q=kettle&token=s3cret"]
    assert "evil" not in out and "mallory" not in out
    assert "spans by tenant.id" in out
