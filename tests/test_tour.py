"""The main job, `python3 dev.py start`: the sample system and a guided lab, unattended."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

# serial: the tour's answers rest on latency signals of a running system.
pytestmark = [pytest.mark.integration, pytest.mark.serial]


def _start_tour(directory, *options: str) -> subprocess.Popen:
    # Into files, not pipes: a pipe not read while the other tour is waited for would fill
    # and hold this one up.
    with (directory / "out.txt").open("w") as out, (directory / "err.txt").open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "labs.tour", "--data-dir", str(directory / "tour"), *options],
            cwd=REPO,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "CI": "true"},
        )


@pytest.fixture(scope="module")
def tours(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """The tour in English and in Japanese, played at the same time (each has its own
    stack on free ports and its own directory): most of a tour is waiting on traffic and
    on the store, so two at once take little longer than one."""
    english = tmp_path_factory.mktemp("tour-en")
    japanese = tmp_path_factory.mktemp("tour-ja")
    # As an earlier tour in the same directory leaves it: all hints taken.
    (japanese / "tour").mkdir()
    (japanese / "tour" / "lab.json").write_text(
        json.dumps({"lab": "failing-tenant", "hints": 3, "answers": []})
    )
    directories = {"en": english, "ja": japanese}
    running = {"en": _start_tour(english), "ja": _start_tour(japanese, "--lang", "ja")}
    finished = {}
    try:
        for lang, process in running.items():
            process.wait(timeout=240)
            out, err = (
                (directories[lang] / name).read_text(encoding="utf-8")
                for name in ("out.txt", "err.txt")
            )
            finished[lang] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return finished


def _output(tours: dict[str, subprocess.CompletedProcess], lang: str) -> str:
    result = tours[lang]
    # The tour exits non-zero unless the answer from the traces scores 100 and the fix
    # switch makes the signal disappear.
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_the_tour_plays_a_lab_to_a_full_score_and_proves_the_cause(tours) -> None:
    out = _output(tours, "en")
    assert "score: 100/100" in out
    assert "o11ykit traces breakdown --by tenant.id --service gateway" in out
    # Step 2 opens a failing trace, down to the catalog span and the error it raised (the
    # hints name KeyError too, but not as a line under a span).
    assert "→ o11ykit traces show " in out
    assert "catalog: GET /products/{product_id} ✗" in out
    assert any(line.strip().startswith("KeyError:") for line in out.splitlines()), out
    assert "hint 3/3" in out and "after:" in out
    assert "the signal is gone: the fix switch removed it" in out
    # The tour's store listens on a free port: the commands shown name it.
    commands = [line for line in out.splitlines() if "→ o11ykit traces" in line]
    assert commands and all(" --url http://127.0.0.1:" in line for line in commands), commands


def test_the_tour_in_japanese_frames_the_lab_in_japanese_too(tours) -> None:
    out = _output(tours, "ja")
    assert out.index("ヒント 1/3") < out.index("ヒント 2/3") < out.index("ヒント 3/3")
    for said in (
        "組み込みの既定の構成でサンプルシステムを起動しています",
        "ラボ: ",
        "ヒント 3/3",
        "トレースが示す答え:",
        "スコア: 100/100",
        "原因を証明する",
        "修正前: ",
        "修正後: ",
        "シグナルが消えました",
        "次は: ",
        "データベースに初期データを投入しました（",  # the stack's progress line
        "、しきい値 0.15、サンプル ",  # the measurements before and after the fix
        "tenant.id ごとのスパン ",
    ):
        assert said in out, said
    english_lines = ("Starting the sample system", "Lab:", "hint ", "Prove it", "Next:")
    for english in (*english_lines, "seeded the databases", "threshold", "samples", "spans by"):
        assert english not in out, english
