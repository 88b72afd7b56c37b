"""The store benchmarks run end to end at tiny sizes and write every section of their JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# serial: the runners measure rates over 1 s rounds and refuse a round that stored nothing,
# which another worker's load once caused.
pytestmark = pytest.mark.serial


def _run_benchmark(module: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    """Run `module` with `args` in its own process; its results, and its work dir gone."""
    results = tmp_path / "results.json"
    command = [sys.executable, "-m", module, *args, "--dir", str(tmp_path)]
    command += ["--results", str(results)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # The work dir under tmp_path was removed: only the results file is left.
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    return json.loads(results.read_text())


@pytest.mark.integration
def test_store_benchmark_smoke(tmp_path: Path) -> None:
    report = _run_benchmark(
        "benchmarks.store.run", tmp_path,
        "--spans", "2000", "--ingest-seconds", "1", "--ingest-rounds", "2", "--repeat", "3",
        "--spawns", "2",
    )  # fmt: skip
    assert report["bytecode"]["all_compiled"]  # before anything was timed
    for section in ("ingest", "fill", "disk", "start_to_ready", "queries", "memory"):
        assert report[section], section
    ingested = report["ingested_store"]
    assert ingested["reached"] and ingested["spans"] >= 2000
    assert ingested["memory"]["rss_mb"] > 0
    assert {r["mode"] for r in report["ingest"]} == {"exporter", "sdk", "raw"}
    assert all(r["spans_stored"] > 0 for r in report["ingest"])
    # The exporter clients into the store and into the bare receiver, each first in turn.
    rounds = report["ingest_exporter_rounds"]
    assert [list(r) for r in rounds] == [["store", "bare"], ["bare", "store"]]
    assert all(r[receiver]["spans_stored"] > 0 for r in rounds for receiver in r)
    summary = report["ingest_exporter_summary"]
    assert summary["rounds"] == 2 and summary["ratio_store_to_bare"] > 0
    assert report["disk"]["spans"] >= 2000
    assert all(q["n"] == 3 for q in report["queries"].values() if isinstance(q, dict))


@pytest.mark.integration
def test_write_layout_benchmark_smoke(tmp_path: Path) -> None:
    report = _run_benchmark(
        "benchmarks.store.write_layout", tmp_path, "--spans", "20000", "--rounds", "1"
    )
    summary = report["summary"]
    assert set(summary) == {"key-first", "block-led", "block-led, trace too"}
    assert all(f["median_us_per_span"] > 0 for f in summary.values())
    # WAL volume is a count of pages, not a timing: the same on every run. Each layout was
    # really applied if each writes less than the one before it.
    wal = [summary[layout]["wal_bytes_per_span"] for layout in summary]
    assert wal[0] > wal[1] > wal[2], wal


@pytest.mark.integration
def test_alternatives_benchmark_smoke(tmp_path: Path) -> None:
    """o11ykit's store measured as the others are; one not installed is said not measured."""
    nothing_installed = tmp_path.parent / f"{tmp_path.name}-installs"
    report = _run_benchmark(
        "benchmarks.store.alternatives", tmp_path,
        "--only", "o11ykit,phoenix", "--no-install", "--install-dir", str(nothing_installed),
        "--rounds", "1", "--seconds", "1", "--drain-seconds", "10",
    )  # fmt: skip
    assert not nothing_installed.exists()
    assert set(report["not_measured"]) == {"phoenix"}
    assert "--no-install" in report["not_measured"]["phoenix"]["why"]
    (ours,) = report["stores"]["o11ykit"]["rounds"]
    assert 0 < ours["start_s"] < 60
    assert ours["spans_stored"] > 0 and ours["acknowledged_total"] > 0
    # Everything acknowledged is stored once the store has drained.
    assert ours["drain"]["complete"]
    assert ours["held_at_end"] >= ours["acknowledged_total"]
    assert ours["memory_at_end"]["rss_mb"] > ours["memory_idle"]["rss_mb"] > 0
    assert not ours["killed_after_sigterm"]


@pytest.mark.parametrize(
    ("failure", "kept"), [(None, False), (RuntimeError, True), (KeyboardInterrupt, False)]
)
def test_a_failed_run_keeps_its_work_dir_for_the_logs_its_error_names(
    tmp_path, monkeypatch, failure, kept
) -> None:
    from argparse import Namespace

    from benchmarks import common

    monkeypatch.setattr(common, "raise_on_sigterm", lambda: None)  # not in the test process
    seen: list[Path] = []

    def measure(args: Namespace, work: Path) -> dict[str, Any]:
        seen.append(work)
        (work / "client-0.log").write_text("what went wrong")
        if failure:
            raise failure("a round stored nothing")
        return {}

    args = Namespace(dir=tmp_path, keep=False, results=tmp_path / "results.json")
    if failure:
        with pytest.raises(failure):
            common.run_and_record("benchmarks.x.run", args, measure, described={})
    else:
        common.run_and_record("benchmarks.x.run", args, measure, described={})
    assert (seen[0] / "client-0.log").exists() == kept
