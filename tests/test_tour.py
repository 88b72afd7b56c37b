"""The main job, `python3 dev.py start`: the sample system and a guided lab, unattended."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def test_the_tour_plays_a_lab_to_a_full_score_and_proves_the_cause(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "labs.tour", "--data-dir", str(tmp_path / "tour")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "CI": "true"},
    )
    # The tour exits non-zero unless the answer from the traces scores 100 and the fix
    # switch makes the signal disappear.
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "score: 100/100" in out
    assert "o11ykit traces breakdown --by tenant.id --service gateway" in out
    # Step 2 opens a failing trace, down to the catalog span and the error it raised (the
    # hints name KeyError too, but not as a line under a span).
    assert "→ o11ykit traces show " in out
    assert "catalog: GET /products/{product_id} ✗" in out
    assert any(line.strip().startswith("KeyError:") for line in out.splitlines()), out
    assert "hint 3/3" in out and "after:" in out
    assert "the signal is gone: the fix switch removed it" in out
