#!/usr/bin/env python3
"""Set-up and entry point for a fresh machine with nothing but Python 3.10+.

    python3 dev.py start   # the main job: the sample system with a guided lab
    python3 dev.py test    # ruff check and format --check, then the whole test suite

Each command creates `.venv` on first use and reinstalls only when pyproject.toml
changes, so running it twice costs nothing the second time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".o11ykit-installed"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def _requirements_digest() -> str:
    # The interpreter too: a venv rebuilt for another Python has nothing installed in it.
    interpreter = f"{sys.version_info[:2]} {Path(sys.base_prefix).resolve()}".encode()
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + interpreter).hexdigest()


def _venv_works() -> bool:
    """An interpreter with pip: a creation cut short (Ctrl-C, or ensurepip missing, as on
    Debian without python3-venv) leaves the interpreter alone, and every later run failed."""
    if not PYTHON.exists():
        return False
    check = [str(PYTHON), "-m", "pip", "--version"]
    return subprocess.run(check, capture_output=True).returncode == 0


def ensure_environment() -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 - this file runs before any venv exists
        sys.exit(f"o11ykit needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    digest = _requirements_digest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == digest:
        return  # installed in full before: the stamp is written last
    if not _venv_works():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    print("installing o11ykit and its development tools into .venv ...", flush=True)
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(digest)


def run(argv: list[str]) -> int:
    return subprocess.call(argv, cwd=ROOT)


def start(args: list[str]) -> int:
    return run([str(PYTHON), "-m", "labs.tour", *args])


def test(args: list[str]) -> int:
    if run([str(BIN / "ruff"), "check", "."]) != 0:
        return 1
    # The layout is checked too, so a change formatted by hand cannot drift from the rest.
    if run([str(BIN / "ruff"), "format", "--check", "."]) != 0:
        return 1
    pytest = [str(PYTHON), "-m", "pytest"]
    if args:  # a developer's own selection or options: one plain run, as they asked
        return run([*pytest, *args])
    # Most tests spend their time waiting on processes they started, so two workers (a file
    # each) halve the wall time. Tests marked `serial` assert on a latency, a time bound or
    # the signals of a running system, which another worker's load would move: they run
    # afterwards, alone. Both parts run, so one failing does not hide the other's results.
    print("dev.py test: the tests not marked serial, in two workers", flush=True)
    parallel = run([*pytest, "-n", "2", "--dist", "loadfile", "-m", "not serial"])
    print("dev.py test: the tests marked serial, alone", flush=True)
    alone = run([*pytest, "-m", "serial"])
    # pytest's 5 means "collected nothing": for CI that is a failure too, not a pass.
    return parallel or alone


COMMANDS = {"start": start, "test": test}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    ensure_environment()
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
