"""The store benchmark runs end to end at tiny sizes and writes every section of its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_store_benchmark_smoke(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    command = [
        sys.executable,
        "-m",
        "benchmarks.store.run",
        "--spans", "2000",
        "--ingest-seconds", "1",
        "--repeat", "3",
        "--spawns", "2",
        "--dir", str(tmp_path),
        "--results", str(results),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(results.read_text())
    for section in ("ingest", "fill", "disk", "start_to_ready", "queries", "memory"):
        assert report[section], section
    assert {r["mode"] for r in report["ingest"]} == {"exporter", "sdk", "raw"}
    assert all(r["spans_stored"] > 0 for r in report["ingest"])
    assert report["disk"]["spans"] >= 2000
    assert all(q["n"] == 3 for q in report["queries"].values() if isinstance(q, dict))
    # The work dir under tmp_path was removed: only the results file is left.
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
