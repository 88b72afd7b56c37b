"""dev.py's set-up: a .venv that works is kept, one cut short is made again, and the
install runs again when pyproject.toml or the interpreter changes."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

import dev


@pytest.fixture
def fake_venv(tmp_path: Path, monkeypatch):
    """dev.py pointed at an empty directory, with venv creation and pip recorded, not run."""
    venv_dir = tmp_path / ".venv"
    python = venv_dir / "bin" / "python"
    monkeypatch.setattr(dev, "VENV", venv_dir)
    monkeypatch.setattr(dev, "PYTHON", python)
    monkeypatch.setattr(dev, "STAMP", venv_dir / ".o11ykit-installed")
    state = SimpleNamespace(python=python, done=[], has_pip=True)
    done = state.done

    class Builder:
        def __init__(self, **options) -> None:
            self.options = options

        def create(self, directory) -> None:
            done.append(f"create clear={self.options.get('clear')}")
            python.parent.mkdir(parents=True, exist_ok=True)
            python.write_text("")

    def run(argv, **kwargs):
        if argv[1:4] == ["-m", "pip", "--version"]:
            done.append("pip --version")
            return subprocess.CompletedProcess(argv, 0 if state.has_pip else 1)
        done.append("pip install")
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(dev.venv, "EnvBuilder", Builder)
    monkeypatch.setattr(dev.subprocess, "run", run)
    return state


def test_an_interpreter_without_pip_is_made_again_not_kept(fake_venv) -> None:
    # Ctrl-C during creation, or Debian without python3-venv, leaves the interpreter alone.
    fake_venv.python.parent.mkdir(parents=True)
    fake_venv.python.write_text("")
    fake_venv.has_pip = False
    dev.ensure_environment()
    assert fake_venv.done == ["pip --version", "create clear=True", "pip install"]
    assert dev.STAMP.read_text() == dev._requirements_digest()


def test_a_complete_install_is_kept_and_a_changed_digest_installs_again(
    fake_venv, monkeypatch
) -> None:
    done = fake_venv.done
    dev.ensure_environment()
    assert done == ["create clear=True", "pip install"]
    done.clear()
    dev.ensure_environment()
    assert done == []  # nothing to do the second time
    monkeypatch.setattr(dev, "_requirements_digest", lambda: "another python or pyproject")
    dev.ensure_environment()
    assert done == ["pip --version", "pip install"]  # the venv works: only pip runs


def test_the_digest_covers_the_interpreter(monkeypatch) -> None:
    before = dev._requirements_digest()
    monkeypatch.setattr(dev.sys, "version_info", (3, 99, 0, "final", 0))
    assert dev._requirements_digest() != before


@pytest.mark.parametrize(
    ("failing", "code"), [(None, 0), ("not serial", 1), ("serial", 1), ("both", 1)]
)
def test_the_test_command_runs_the_parallel_part_then_the_serial_part(
    monkeypatch, failing, code
) -> None:
    ran: list[list[str]] = []

    def run(argv: list[str]) -> int:
        ran.append(argv[1:] if "ruff" in argv[0] else argv[3:])
        marker = argv[argv.index("-m", 3) + 1] if "-m" in argv[3:] else None
        return 1 if failing in (marker, "both") and marker else 0

    monkeypatch.setattr(dev, "run", run)
    assert dev.test([]) == code
    # Both parts run even when the first fails: one must not hide the other's results.
    assert ran == [
        ["check", "."],
        ["format", "--check", "."],
        ["-n", "2", "--dist", "loadfile", "-m", "not serial"],
        ["-m", "serial"],
    ]


def test_the_test_command_with_arguments_runs_pytest_once_with_them(monkeypatch) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(dev, "run", lambda argv: ran.append(argv) or 0)
    assert dev.test(["tests/test_dev.py", "-x"]) == 0
    assert ran[-1] == [str(dev.PYTHON), "-m", "pytest", "tests/test_dev.py", "-x"]
    assert len(ran) == 3  # ruff twice, pytest once
